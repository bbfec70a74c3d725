using System.CommandLine;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Recording;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;

namespace OnnxQuant.Cli;

/// <summary>A calibration run and what it learned about the model's context.</summary>
/// <param name="Probed">The limit found by running the model, when its structure showed none (null otherwise).</param>
internal sealed record CalibrationRun(CalibrationResult Result, CalibrationDataset Dataset, ContextLimit? Probed);

/// <summary>
/// Sequence lengths obey the model's context limit (docs/architecture.md, "Context limits"): a default above it is
/// clamped with a one-line notice, a length the user gave above it is a usage error naming the limit.
/// </summary>
internal static class ContextLengths
{
    /// <summary>The value of <paramref name="option"/>, within <paramref name="limit"/>.</summary>
    /// <param name="use">What the length is used for, completing "note: ... runs at most N tokens (...); {use} N tokens".</param>
    public static int Resolve(ParseResult parse, Option<int> option, ContextLimit? limit, string modelPath, TextWriter notices, string use) =>
        Resolve(Explicit(parse, option) ? parse.GetValue(option) : null, parse.GetValue(option), option.Name, limit, modelPath, notices, use);

    /// <summary>
    /// <paramref name="given"/> (named <paramref name="name"/>: an option or a recipe key) within <paramref name="limit"/>,
    /// or <paramref name="fallback"/> clamped to it when none was given.
    /// </summary>
    public static int Resolve(int? given, int fallback, string name, ContextLimit? limit, string modelPath, TextWriter notices, string use)
    {
        int value = given ?? fallback;
        if (limit is null || value <= limit.Length)
            return value;
        if (given is not null)
            throw new OnnxQuantException(modelPath, limit.TooLong(name, value), ExitCode.Usage);
        notices.WriteLine(Clamped(modelPath, limit, use));
        return limit.Length;
    }

    public static bool Explicit(ParseResult parse, Option option) => parse.GetResult(option) is { Implicit: false };

    /// <summary>
    /// Loads the data at the --seq-len <paramref name="seqLen"/> allows and calibrates on it. When ONNX Runtime shows a
    /// limit the structure did not (<see cref="ContextTooLongException"/>) and the length was the default, calibrates
    /// again at that limit.
    /// </summary>
    public static CalibrationRun Calibrate(CliContext context, ParseResult parse, Option<int> seqLen, OnnxModel loaded, string modelPath,
        DataOptions data, CalibrationOptions options, SessionSettings session, SequenceLimits limits, TextWriter notices, Action<CalibrationDataset>? starting = null) =>
        Calibrate(context, Explicit(parse, seqLen) ? parse.GetValue(seqLen) : null, parse.GetValue(seqLen), seqLen.Name, loaded, modelPath, data, options, session, limits, notices, starting);

    /// <summary>As above, with the length given (<paramref name="seqLen"/>, named <paramref name="name"/>) or null for <paramref name="fallback"/>.</summary>
    public static CalibrationRun Calibrate(CliContext context, int? seqLen, int fallback, string name, OnnxModel loaded, string modelPath,
        DataOptions data, CalibrationOptions options, SessionSettings session, SequenceLimits limits, TextWriter notices, Action<CalibrationDataset>? starting = null)
    {
        var vocabulary = Vocabulary.Of(limits, modelPath);
        data = data with { SequenceLength = Resolve(seqLen, fallback, name, limits.Context, modelPath, notices, "calibrating on"), Vocabulary = vocabulary };
        CalibrationRun Run(DataOptions dataOptions, ContextLimit? probed)
        {
            var dataset = CalibrationData.Load(dataOptions, modelPath);
            starting?.Invoke(dataset);
            var result = CalibrateProgress.Run(context, () => Calibrator.Run(loaded, dataset, options, session, CalibrateProgress.Current, CalibrateProgress.Cancel));
            if (result.Notice is not null)
                context.Error.WriteLine($"note: {result.Notice}");
            return new CalibrationRun(result, dataset, probed);
        }
        try
        {
            return Run(data, null);
        }
        catch (ContextTooLongException e) when (seqLen is null)
        {
            notices.WriteLine(Clamped(modelPath, e.Limit, "calibrating on"));
            return Run(data with { SequenceLength = e.Limit.Length }, e.Limit);
        }
    }

    private static string Clamped(string modelPath, ContextLimit limit, string use) =>
        $"note: {modelPath} runs at most {limit.Length} tokens per sequence ({limit.Reason}); {use} {limit.Length} tokens";
}

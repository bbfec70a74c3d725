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
    public static int Resolve(ParseResult parse, Option<int> option, ContextLimit? limit, string modelPath, TextWriter notices, string use)
    {
        int value = parse.GetValue(option);
        if (limit is null || value <= limit.Length)
            return value;
        if (Explicit(parse, option))
            throw new OnnxQuantException(modelPath, limit.TooLong(option.Name, value), ExitCode.Usage);
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
        DataOptions data, CalibrationOptions options, SessionSettings session, SequenceLimits limits, TextWriter notices, Action<CalibrationDataset>? starting = null)
    {
        var vocabulary = limits is { Vocabulary: { } size, EmbeddingTable: { } table } ? new Vocabulary(size, modelPath, table) : null;
        data = data with { SequenceLength = Resolve(parse, seqLen, limits.Context, modelPath, notices, "calibrating on"), Vocabulary = vocabulary };
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
        catch (ContextTooLongException e) when (!Explicit(parse, seqLen))
        {
            notices.WriteLine(Clamped(modelPath, e.Limit, "calibrating on"));
            return Run(data with { SequenceLength = e.Limit.Length }, e.Limit);
        }
    }

    private static string Clamped(string modelPath, ContextLimit limit, string use) =>
        $"note: {modelPath} runs at most {limit.Length} tokens per sequence ({limit.Reason}); {use} {limit.Length} tokens";
}

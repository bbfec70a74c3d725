using System.CommandLine;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Recipes;
using OnnxQuant.Statistics;

namespace OnnxQuant.Cli;

/// <summary>
/// What a quantizing command calibrated with: the statistics, the run (null when read from --stats), the data (null
/// likewise), and the context limit calibration found by running the model (null when none was needed).
/// </summary>
internal sealed record CalibrationInput(CalibrationStats Stats, CalibrationResult? Result, CalibrationDataset? Dataset, ContextLimit? Probed = null);

/// <summary>
/// The options `smooth` and `awq` share for their statistics — an existing --stats file, or data to calibrate on — and
/// the one way they turn them into statistics. (`calibrate` has its own: there --stats means "summarise this file".)
/// </summary>
internal sealed class CalibrationArguments
{
    public Option<string?> Stats { get; } = new("--stats") { Description = "Use this statistics file (from `onnxquant calibrate`) instead of calibrating." };

    public Option<string[]> Data { get; } = new("--data") { Description = "Calibration data: text, .jsonl or .ids files, or one .npz of arrays named after the model's inputs (samples along axis 0) for models that do not take text. Default: Jane Austen's Emma.", AllowMultipleArgumentsPerToken = true };

    /// <summary>Also the tokenizer of the held-out verification.</summary>
    public Option<string?> Tokenizer { get; } = new("--tokenizer") { Description = "Tokenizer file or folder (default: next to the model)." };

    public Option<int> Samples { get; } = new("--samples") { Description = "Calibration samples.", DefaultValueFactory = _ => 128 };

    public Option<int> SequenceLength { get; } = new("--seq-len") { Description = "Tokens per calibration sample.", DefaultValueFactory = _ => 512 };

    public Option<int> Seed { get; } = new("--seed") { Description = "Seed for picking calibration windows and sample rows.", DefaultValueFactory = _ => 0 };

    public Option<bool> WholeGraph { get; } = WholeGraphOption();

    public Option<bool> BlockSessions { get; } = BlockSessionsOption();

    public IEnumerable<Option> All => [Stats, Data, Tokenizer, Samples, SequenceLength, Seed, WholeGraph, BlockSessions];

    /// <summary>--whole-graph, shared with `calibrate` and `run`.</summary>
    public static Option<bool> WholeGraphOption() => new("--whole-graph")
    {
        Description = "Calibrate in one ONNX Runtime session over the whole model. Default: the whole graph when its weights are at most 1/8 of the available memory, else one session per attention/MLP block (--block-sessions).",
    };

    /// <summary>--block-sessions, shared with `calibrate` and `run`.</summary>
    public static Option<bool> BlockSessionsOption() => new("--block-sessions")
    {
        Description = "Calibrate in one ONNX Runtime session per attention/MLP block, holding one block's weights at a time, whatever the model's size.",
    };

    /// <summary>Either option, or <see cref="CalibrationSessions.Auto"/> (decided by the model's size against the available memory).</summary>
    public static CalibrationSessions SessionsOf(ParseResult parse, Option<bool> wholeGraph, Option<bool> blockSessions) =>
        (parse.GetValue(wholeGraph), parse.GetValue(blockSessions)) switch
        {
            (true, true) => throw new OnnxQuantException(null, "--whole-graph and --block-sessions ask for opposite things; give one", ExitCode.Usage),
            (true, false) => CalibrationSessions.WholeGraph,
            (false, true) => CalibrationSessions.Layers,
            _ => CalibrationSessions.Auto,
        };

    /// <summary>The options as a recipe's calibration settings (--seq-len only when given: the default is clamped, a given value is not).</summary>
    public CalibrationSettings Settings(ParseResult parse) => new()
    {
        Data = parse.GetValue(Data) ?? [],
        Stats = parse.GetValue(Stats),
        Tokenizer = parse.GetValue(Tokenizer),
        Samples = parse.GetValue(Samples),
        SeqLen = ContextLengths.Explicit(parse, SequenceLength) ? parse.GetValue(SequenceLength) : null,
        Seed = parse.GetValue(Seed),
    };

    public static DataOptions DataOptions(CalibrationSettings settings, ModelTask task) => new()
    {
        Paths = [.. settings.Data],
        TokenizerPath = settings.Tokenizer,
        Samples = settings.Samples,
        SequenceLength = settings.SeqLen ?? CalibrationSettings.DefaultSeqLenFor(task),
        Seed = settings.Seed,
    };

    /// <summary>
    /// Reads the statistics file (checked against the model) or calibrates on the data within the model's context
    /// (<paramref name="limits"/>), keeping <paramref name="sampleRows"/> activation rows per tensor, with a progress bar and a
    /// line on <paramref name="stages"/>. <paramref name="seqLenName"/> names the length in errors (--seq-len, or the
    /// recipe's calibration.seqLen). Without a given length, the windows are sized for <paramref name="task"/>.
    /// </summary>
    /// <summary>
    /// A model with no token-id input (a ViT's float pixel_values) cannot be fed text: refused before any tokenizer is
    /// looked for, naming the .npz arrays that do feed it.
    /// </summary>
    public static void EnsureDataFits(OnnxModel loaded, IReadOnlyList<string> data, string modelPath)
    {
        var inputs = loaded.Graph.Inputs.Where(i => loaded.Graph.GetInitializer(i.Name) is null).ToList();
        if (data.Any(CalibrationData.IsArrays) || inputs.Count == 0 || inputs.Any(i => SequenceLimits.IsTokenInput(i.Name)))
            return;
        var floats = inputs.Where(i => i.Type?.TensorType is { } t && ElementType.IsFloat((Onnx.TensorProto.Types.DataType)t.ElemType)).ToList();
        if (floats.Count == 0)
            return;
        string list = string.Join(", ", floats.Select(i => $"'{i.Name}' {ElementType.Name((Onnx.TensorProto.Types.DataType)i.Type.TensorType.ElemType)}"));
        throw new OnnxQuantException(modelPath,
            $"takes no token ids but floating-point inputs ({list}), so text cannot feed it. Calibrate it on arrays with --data x.npz "
            + "(one array per input, named after it, samples along axis 0), and verify with --verify-data y.npz or skip that with --no-verify",
            ExitCode.Usage);
    }

    public static CalibrationInput Obtain(CliContext context, CalibrationSettings settings, int sampleRows, string seqLenName, OnnxModel loaded, string modelPath,
        SessionSettings session, SequenceLimits limits, TextWriter stages, ModelTask task, CalibrationSessions sessions = CalibrationSessions.Auto)
    {
        if (settings.Stats is { } statsPath)
        {
            var statistics = StatsFile.Read(statsPath);
            statistics.EnsureMatches(loaded.Graph, statsPath);
            return new CalibrationInput(statistics, null, null);
        }
        var dataOptions = DataOptions(settings, task);
        var options = new CalibrationOptions { SampleRowsPerTensor = sampleRows, Seed = dataOptions.Seed, Sessions = sessions };
        var run = ContextLengths.Calibrate(context, settings.SeqLen, CalibrationSettings.DefaultSeqLenFor(task), seqLenName, loaded, modelPath, dataOptions, options, session, limits, stages,
            dataset => stages.WriteLine(StartLine(dataset, settings.SeqLen is null ? task : null)));
        return new CalibrationInput(run.Result.Stats, run.Result, run.Dataset, run.Probed);
    }

    /// <summary>"calibrating on emma.txt: 128 x 128 tokens (paragraph-sized windows for an encoder; --seq-len to change)".</summary>
    /// <param name="defaultFor">The task whose default window length was used; null when the length was given.</param>
    public static string StartLine(CalibrationDataset dataset, ModelTask? defaultFor)
    {
        if (dataset.Feeds is not null)
            return $"calibrating on {dataset.Description}: {dataset.Samples.Count} samples of arrays";
        string why = defaultFor is { } task ? $" ({CalibrationSettings.DefaultWindowsFor(task)}; --seq-len to change)" : "";
        return $"calibrating on {dataset.Description}: {dataset.Samples.Count} x {dataset.SequenceLength} tokens{why}";
    }
}

using System.CommandLine;
using System.Diagnostics;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Calibrate.Verification;
using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Placement;
using OnnxQuant.Statistics;

namespace OnnxQuant.Cli;

/// <summary>What a quantizing command asks the shared skeleton to do.</summary>
/// <param name="Pipeline">The declared passes (a preset of <see cref="Presets"/>).</param>
/// <param name="Selection">The linears the options keep or quantize (the same object the pipeline's passes hold).</param>
/// <param name="Prepare">Adds command-specific facts to the analyses once the calibration is known (AWQ's block evaluator).</param>
/// <param name="WithoutCalibration">Statistics to use when the pipeline needs none and no --stats was given.</param>
internal sealed record QuantizeJob(
    string ModelPath, string OutPath, PipelineSpec Pipeline, LinearSelection Selection, CalibrationArguments Calibration,
    SessionSettings Session, string StageLine, VerificationArguments Verification, int LatencyRuns)
{
    public Action<CalibrationInput, AnalysisStore>? Prepare { get; init; }

    /// <summary>Set when the input is an ONNX Runtime GenAI folder: the output is a folder with its other files copied.</summary>
    public GenAiOutput? GenAi { get; init; }

    /// <summary>The provider the output is meant for: nodes it has no kernel for are named before the model is written.</summary>
    public DeploymentTarget? Target { get; init; }
}

/// <summary>What the skeleton did, for the command's summary.</summary>
internal sealed record QuantizeOutcome(
    LinearTable Linears, CalibrationInput Calibration, AnalysisStore Analyses, IReadOnlyList<PipelineStep> Steps, ModelFiles Before,
    double CompileSeconds, VerificationOutcome? Verification, LatencyReport? Latency);

/// <summary>
/// The one skeleton of `smooth` and `awq`: load -> analyse the linears (refusing a model with nothing to quantize before
/// any calibration) -> calibrate or read --stats (only when a pass needs statistics) -> run the declared passes -> save ->
/// verify -> hand the outcome to the command's summary.
/// </summary>
internal static class QuantizeCommand
{
    /// <summary>Stage lines ("calibrating ...", a line per tenth of each pass, "wrote ...") go to stderr, also when it is a log file.</summary>
    public static QuantizeOutcome Run(CliContext context, ParseResult parse, QuantizeJob job)
    {
        if (job.GenAi is not { } genai)
            return RunCore(context, parse, job);
        try
        {
            return RunCore(context, parse, job);
        }
        finally
        {
            // A folder this run created and wrote nothing into goes again (a failure before the save).
            if (genai.Created && Directory.Exists(genai.OutputFolder) && !Directory.EnumerateFileSystemEntries(genai.OutputFolder).Any())
                Directory.Delete(genai.OutputFolder);
        }
    }

    private static QuantizeOutcome RunCore(CliContext context, ParseResult parse, QuantizeJob job)
    {
        var stages = context.Error;
        using var loaded = ModelFile.Load(job.ModelPath);
        // Fail in the first second, not after calibration: unwritable output, or an output that is one of the inputs.
        OutputPaths.CheckModel(job.OutPath, loaded,
            [.. parse.GetValue(job.Calibration.Data) ?? [], parse.GetValue(job.Calibration.Stats), parse.GetValue(job.Verification.Data)]);
        var table = LinearAnalysis.Analyze(loaded.Graph, job.Selection);
        bool rewrites = job.Pipeline.Passes.Any(p => p is W8A8RewriteSpec or W4RewriteSpec);
        int quantizedOps = loaded.Graph.Nodes.Count(LinearAnalysis.IsQuantizedLinearOp);
        if (rewrites)
        {
            EnsureSomethingToQuantize(job.ModelPath, table, quantizedOps);
            // A partly quantized model: its float linears are quantized, what an earlier run quantized stays as it is.
            int dequantized = table.All.Count(c => c.Reason == KeepReason.AlreadyQuantized);
            if (quantizedOps + dequantized > 0)
                context.Error.WriteLine($"note: {job.ModelPath} is partly quantized: {quantizedOps + dequantized} linear(s) already quantized are kept as they are; {table.Quantizable.Count()} float linear(s) will be quantized");
        }
        // Lengths are settled before calibrating: a verification length above the model's context fails now, not after the work.
        var limits = SequenceLimits.Find(loaded.Graph);
        bool causal = ModelTaskDetection.Detect(loaded.Graph, job.Verification.Task.Value(parse)).Task == ModelTask.CausalLm;
        string? tokenizer = parse.GetValue(job.Calibration.Tokenizer);
        var early = job.Verification.Options(parse, job.Session, tokenizer, limits.Context, causal, job.ModelPath, TextWriter.Null);
        if (job.Verification.Enabled(parse))
            EnsureVerificationCanRead(job, parse, early);
        foreach (var pattern in job.Selection.UnmatchedPatterns(table.All.Select(c => c.Name)))
            context.Error.WriteLine($"warning: --exclude '{pattern}' matches no MatMul or Gemm of {job.ModelPath}");
        // New tensors go to a scratch file beside the output, so memory holds one layer's weights, not the model's.
        using var spill = OutputPaths.AttachSpill(loaded, job.OutPath);
        var before = ModelFiles.Of(loaded);
        var clock = Stopwatch.StartNew();

        var calibrated = job.Pipeline.NeedsCalibration || parse.GetValue(job.Calibration.Stats) is not null
            ? job.Calibration.Obtain(context, parse, loaded, job.ModelPath, job.Session, limits, stages)
            : new CalibrationInput(new CalibrationStats(ModelFingerprint.Compute(loaded.Graph), new CalibrationInfo(), []), null, null);
        // Now with its notice, after calibration's; with the limit calibration found by running the model, if it had to.
        var verifyOptions = job.Verification.Options(parse, job.Session, tokenizer, limits.Context ?? calibrated.Probed, causal, job.ModelPath, stages);
        var analyses = new AnalysisStore();
        analyses.Set(calibrated.Stats);
        analyses.Set(ActivationRanges.From(calibrated.Stats));
        job.Prepare?.Invoke(calibrated, analyses);

        stages.WriteLine(job.StageLine);
        var steps = job.Pipeline.Build().Run(loaded, new PassContext
        {
            Cancellation = context.Cancellation,
            Progress = new AfterWrite.StageProgress(stages),
            Analyses = analyses,
        });
        if (rewrites && !steps[^1].Result.Changed)
            throw NothingQuantized(job.ModelPath, analyses);
        if (job.Target is { } target)
            WarnAboutFallbacks(stages, loaded, target);
        ModelFile.Save(loaded, job.OutPath, cancel: context.Cancellation);
        double compileSeconds = clock.Elapsed.TotalSeconds;
        stages.WriteLine($"wrote {job.OutPath}");
        if (job.GenAi is { } genai)
        {
            var copied = genai.Input.CopyCompanions(genai.OutputFolder, loaded.ExternalDataPaths);
            stages.WriteLine($"wrote ONNX Runtime GenAI folder {genai.OutputFolder}: {genai.Input.ModelFileName} quantized, copied {string.Join(", ", copied)}");
        }

        var (verification, timing) = AfterWrite.Check(context, stages, job.ModelPath, job.OutPath, job.Verification.Enabled(parse),
            parse.GetValue(job.Verification.Latency), job.LatencyRuns, verifyOptions);
        return new QuantizeOutcome(table, calibrated, analyses, steps, before, compileSeconds, verification, timing);
    }

    // Before writing: the nodes the chosen provider has no kernel for (ONNX Runtime would run them elsewhere, with copies).
    private static void WarnAboutFallbacks(TextWriter stages, OnnxModel model, DeploymentTarget target)
    {
        var report = PlacementCheck.Check(model, DeploymentTargets.Provider(target));
        if (report.Fallbacks.Count > 0)
            stages.WriteLine(PlacementPrinter.Warning(report, ExecutionProviders.Key(report.Provider)));
    }

    // Every linear kept for a reason no option changes, or every one excluded: say so before calibrating.
    private static void EnsureSomethingToQuantize(string modelPath, LinearTable table, int quantizedOps)
    {
        if (table.Quantizable.Any())
            return;
        int dequantized = table.All.Count(c => c.Reason == KeepReason.AlreadyQuantized);
        // Attention's products have no weight; if nothing else is left in float, an earlier run quantized it all.
        if (quantizedOps + dequantized > 0 && table.All.All(c => c.Reason is KeepReason.AlreadyQuantized or KeepReason.ComputedWeight))
            throw new OnnxQuantException(modelPath,
                $"is already quantized: it has {quantizedOps + dequantized} quantized linear(s) (MatMulNBits, MatMulInteger, QLinearMatMul or DequantizeLinear weights) and no floating-point MatMul/Gemm with a constant weight left. Quantize the floating-point model instead",
                ExitCode.Unsupported);
        if (table.Count == 0)
            throw new OnnxQuantException(modelPath, "has no MatMul or Gemm node: there is nothing to quantize", ExitCode.Unsupported);
        throw new OnnxQuantException(modelPath,
            $"has no MatMul or Gemm that can be quantized with these options ({Reasons(table.All.Select(c => c.Reason))}); see `onnxquant inspect` for each node's verdict",
            ExitCode.Unsupported);
    }

    // Calibrating on ids needs no tokenizer, but held-out text does, and arrays (.npz) need held-out arrays: say what is
    // missing before calibrating, not after the model is written.
    private static void EnsureVerificationCanRead(QuantizeJob job, ParseResult parse, VerifyOptions verify)
    {
        var data = parse.GetValue(job.Calibration.Data) ?? [];
        string? held = verify.TextPath;
        if (data.Any(CalibrationData.IsArrays))
        {
            if (held is not null && CalibrationData.IsArrays(held))
                return;
            throw new OnnxQuantException(job.ModelPath,
                "is calibrated on arrays (.npz), so held-out text cannot verify it. Give held-out arrays in the same form with --verify-data (a .npz), or skip the check with --no-verify",
                ExitCode.Usage);
        }
        bool calibrationIsIds = parse.GetValue(job.Calibration.Stats) is not null || (data.Length > 0 && data.All(p => DataFiles.IsPreTokenized(p)));
        if (!calibrationIsIds || held is not null && (DataFiles.IsPreTokenized(held) || CalibrationData.IsArrays(held)))
            return;
        try
        {
            TokenizerLoader.Load(verify.TokenizerPath, job.ModelPath, RunStage.Verification);
        }
        catch (OnnxQuantException e) when (verify.TokenizerPath is null)
        {
            string text = held is not null ? Path.GetFileName(held) : "the default held-out text (Persuasion)";
            throw new OnnxQuantException(job.ModelPath,
                $"has no tokenizer beside it (tokenizer.json, tokenizer.model, vocab.json + merges.txt or vocab.txt). The calibration data is token ids, but verification reads {text}, " +
                "which needs the model's tokenizer. Give held-out token ids with --verify-data (an .ids or .jsonl file), a tokenizer with --tokenizer, " +
                "or skip the check with --no-verify", ExitCode.Usage, e);
        }
    }

    private static OnnxQuantException NothingQuantized(string modelPath, AnalysisStore analyses)
    {
        var reasons = analyses.Find<W8A8Report>()?.Decisions.Select(d => d.Reason) ?? analyses.Find<W4Report>()?.Decisions.Select(d => d.Reason) ?? [];
        return new OnnxQuantException(modelPath, $"has no MatMul or Gemm left to quantize ({Reasons(reasons)})", ExitCode.Unsupported);
    }

    // "12 computed weight, 1 LM head (--include-lm-head to quantize it)".
    private static string Reasons(IEnumerable<KeepReason> reasons) =>
        string.Join(", ", reasons.GroupBy(r => r).Select(g => $"{g.Count()} {KeepReasons.Describe(g.Key)}"));
}

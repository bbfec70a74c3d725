using System.Diagnostics;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Evaluation;
using OnnxQuant.Analysis;
using OnnxQuant.Awq;
using OnnxQuant.Calibrate.BlockEvaluation;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Calibrate.Verification;
using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Placement;
using OnnxQuant.Recipes;
using OnnxQuant.Statistics;

namespace OnnxQuant.Cli;

/// <summary>What a quantizing command asks the shared skeleton to do: a recipe (a preset of `smooth`/`awq`, or a file for `run`) on a model.</summary>
/// <param name="RecipePath">The recipe file `run` read, so messages name its keys; null when the recipe is a command line's.</param>
internal sealed record QuantizeJob(
    string ModelPath, string OutPath, Recipe Recipe, SessionSettings Session, string StageLine, int LatencyTokens, int LatencyRuns, string? RecipePath = null)
{
    /// <summary>Set when the input is an ONNX Runtime GenAI folder: the output is a folder with its other files copied.</summary>
    public GenAiOutput? GenAi { get; init; }

    /// <summary>The provider the output is meant for: nodes it has no kernel for are named before the model is written.</summary>
    public DeploymentTarget? Target { get; init; }

    /// <summary>Block by block (the default where the model splits) or one whole-graph session; how to run, not what to compute, so not in the recipe.</summary>
    public CalibrationSessions Sessions { get; init; } = CalibrationSessions.Auto;

    public bool FromRecipe => RecipePath is not null;

    public string SeqLenName => FromRecipe ? "calibration.seqLen" : "--seq-len";

    public string VerifyLengthName => FromRecipe ? "verification.length" : "--verify-length";
}

/// <summary>What the skeleton did, for the command's summary.</summary>
internal sealed record QuantizeOutcome(
    LinearTable Linears, CalibrationInput Calibration, AnalysisStore Analyses, IReadOnlyList<PipelineStep> Steps, ModelFiles Before,
    double CompileSeconds, VerificationOutcome? Verification, LatencyReport? Latency, IReadOnlyList<GateResult> Gates);

/// <summary>
/// The one skeleton of `smooth`, `awq` and `run`: load -> analyse the linears (refusing a model with nothing to quantize,
/// overlapping recipe overrides or unmeasurable gates before any calibration) -> calibrate or read the statistics file
/// (only when a pass needs statistics) -> run the recipe's passes -> stamp provenance and save -> verify (its figures
/// join the provenance) -> check the gates -> hand the outcome to the command's summary.
/// </summary>
internal static class QuantizeCommand
{
    /// <summary>Stage lines ("calibrating ...", a line per tenth of each pass, "wrote ...") go to stderr, also when it is a log file.</summary>
    public static QuantizeOutcome Run(CliContext context, QuantizeJob job)
    {
        if (job.GenAi is not { } genai)
            return RunCore(context, job);
        try
        {
            return RunCore(context, job);
        }
        finally
        {
            // A folder this run created and wrote nothing into goes again (a failure before the save).
            // (its subfolders for a decoder named sub/model.onnx hold no file either then)
            if (genai.Created && Directory.Exists(genai.OutputFolder) && !Directory.EnumerateFiles(genai.OutputFolder, "*", SearchOption.AllDirectories).Any())
                Directory.Delete(genai.OutputFolder, recursive: true);
        }
    }

    private static QuantizeOutcome RunCore(CliContext context, QuantizeJob job)
    {
        var stages = context.Error;
        using var loaded = ModelFile.Load(job.ModelPath);
        // Settling the ranking changes no linear's scheme, so one analysis serves both.
        var table = LinearAnalysis.Analyze(loaded.Graph, job.Recipe.QuantizedLinears());
        var recipe = SettleSensitivity(context, job, table);
        // Fail in the first second, not after calibration: unwritable output, or an output that is one of the inputs.
        OutputPaths.CheckModel(job.OutPath, loaded, [.. recipe.Calibration.Data, recipe.Calibration.Stats, recipe.Verification.Data]);
        var pipeline = recipe.Pipeline();
        bool probesModelOutput = pipeline.Passes.Any(p => p.ProbesModelOutput);
        if (probesModelOutput && recipe.Calibration.Data.Any(CalibrationData.IsArrays))
            throw new OnnxQuantException(job.ModelPath, "model-output sensitivity runs the model on token windows, and the calibration data are arrays (.npz); "
                + "rank by each linear's own output instead (--sensitivity linear, a recipe's bits-plan \"sensitivity\": \"linear\")", ExitCode.Usage);
        EnsureNoOverlap(job, table);
        bool rewrites = pipeline.Passes.Any(p => p.Rewrites);
        int quantizedOps = loaded.Graph.Nodes.Count(LinearAnalysis.IsQuantizedLinearOp);
        // Smoothing alone (--no-quantize) on an already-quantized model would calibrate and write an unchanged copy.
        if (!rewrites && pipeline.Passes.Any(p => p.RewriteOfLinears is not null || p.NeedsCalibration))
            EnsureNotQuantizedAlready(job.ModelPath, loaded.Graph, table);
        if (rewrites)
        {
            EnsureSomethingToQuantize(job.ModelPath, loaded.Graph, table);
            // A partly quantized model: its float linears are quantized, what an earlier run quantized stays as it is.
            int dequantized = table.All.Count(c => c.Reason == KeepReason.AlreadyQuantized);
            if (quantizedOps + dequantized > 0)
                context.Error.WriteLine($"note: {job.ModelPath} is partly quantized: {quantizedOps + dequantized} linear(s) already quantized are kept as they are; {table.Quantizable.Count()} float linear(s) will be quantized");
        }
        // Lengths are settled before calibrating: a verification length above the model's context fails now, not after the work.
        var limits = SequenceLimits.Find(loaded.Graph);
        var task = ModelTaskDetection.Detect(loaded.Graph, recipe.Verification.Task).Task;
        GateArguments.EnsureMeasurable(recipe.Gates, recipe.Verification.Enabled, job.FromRecipe ? "the recipe's verification.enabled is false" : "--no-verify turns verification off", task,
            job.ModelPath, job.FromRecipe);
        bool causal = task == ModelTask.CausalLm;
        string? tokenizer = recipe.Calibration.Tokenizer;
        var early = VerificationArguments.Options(recipe.Verification, job.VerifyLengthName, job.Session, tokenizer, limits.Context, causal, job.ModelPath, TextWriter.Null);
        if (pipeline.NeedsCalibration && recipe.Calibration.Stats is null)
            CalibrationArguments.EnsureDataFits(loaded, recipe.Calibration.Data, job.ModelPath);
        if (recipe.Verification.Enabled)
        {
            EnsureVerificationCanRead(job, early);
            EnsureHeldOutReadable(job, early, limits);
        }
        WarnUnmatched(context, job, table);
        // New tensors go to a scratch file beside the output, so memory holds one layer's weights, not the model's.
        using var spill = OutputPaths.AttachSpill(loaded, job.OutPath);
        var before = ModelFiles.Of(loaded);
        string inputFingerprint = ModelFingerprint.Compute(loaded.Graph);
        var clock = Stopwatch.StartNew();

        var calibrated = pipeline.NeedsCalibration || recipe.Calibration.Stats is not null
            ? CalibrationArguments.Obtain(context, recipe.Calibration, recipe.SampleRowsFor(WidestK(table)), job.SeqLenName, loaded, job.ModelPath, job.Session, limits, stages, task, job.Sessions)
            : new CalibrationInput(new CalibrationStats(inputFingerprint, new CalibrationInfo(), []), null, null);
        // Now with its notice, after calibration's; with the limit calibration found by running the model, if it had to.
        var verifyOptions = VerificationArguments.Options(recipe.Verification, job.VerifyLengthName, job.Session, tokenizer, limits.Context ?? calibrated.Probed,
            causal, job.ModelPath, stages);
        if (recipe.RoundsWithGptq && recipe.Calibration.Stats is { } statsPath)
            EnsureRowsForGptq(job, statsPath, calibrated.Stats, table);
        var analyses = new AnalysisStore();
        analyses.Set(calibrated.Stats);
        analyses.Set(ActivationRanges.From(calibrated.Stats));
        if (pipeline.Passes.Any(p => p.NeedsBlockInputs))
        {
            var dataset = calibrated.Dataset ?? CalibrationData.Load(CalibrationArguments.DataOptions(recipe.Calibration, task), job.ModelPath);
            analyses.Set<IBlockEvaluator>(new OrtBlockEvaluator(BlockWindows(dataset), job.Session));
        }
        if (probesModelOutput)
        {
            var dataset = calibrated.Dataset ?? CalibrationData.Load(CalibrationArguments.DataOptions(recipe.Calibration, task), job.ModelPath);
            analyses.Set<IOutputErrorProbe>(new OrtOutputProbe(ProbeWindows(dataset), job.Session));
        }

        stages.WriteLine(job.StageLine);
        var steps = pipeline.Build().Run(loaded, new PassContext
        {
            Cancellation = context.Cancellation,
            Progress = new AfterWrite.StageProgress(stages),
            Analyses = analyses,
        });
        if (rewrites && !steps.Any(s => s.Pass is "w8a8" or "w4-rewrite" && s.Result.Changed))
            throw NothingQuantized(job.ModelPath, analyses);
        if (job.Target is { } target)
            WarnAboutFallbacks(stages, loaded, target);
        ModelProvenance.Stamp(loaded, ToolVersion.Text, recipe, inputFingerprint, CalibrationDigest.Of(calibrated, recipe.Calibration));
        ModelFile.Save(loaded, job.OutPath, cancel: context.Cancellation);
        double compileSeconds = clock.Elapsed.TotalSeconds;
        stages.WriteLine($"wrote {job.OutPath}");
        if (job.GenAi is { } genai)
        {
            var copied = genai.Input.CopyCompanions(genai.OutputFolder, loaded.ExternalDataPaths);
            stages.WriteLine($"wrote ONNX Runtime GenAI folder {genai.OutputFolder}: {genai.Input.ModelFileName} quantized, copied {string.Join(", ", copied)}");
        }

        var (verification, timing) = AfterWrite.Check(context, stages, job.ModelPath, job.OutPath, recipe.Verification.Enabled,
            job.LatencyTokens, job.LatencyRuns, verifyOptions);
        var gates = recipe.Gates.Any ? GateArguments.Check(recipe.Gates, verification?.Report, job.FromRecipe) : [];
        if (verification is not null)
            ModelProvenance.AddVerification(job.OutPath, CalibrationDigest.VerificationJson(verification, gates));
        return new QuantizeOutcome(table, calibrated, analyses, steps, before, compileSeconds, verification, timing, gates);
    }

    // Two overrides that give one linear different schemes: the recipe is ambiguous (same-scheme overlaps are harmless).
    private static void EnsureNoOverlap(QuantizeJob job, LinearTable table)
    {
        var overrides = job.Recipe.Linears.Overrides;
        foreach (var (first, second, linear) in job.Recipe.Linears.Overlaps(table.All.Select(c => c.Name)))
            if (overrides[first].Scheme != overrides[second].Scheme)
                throw new OnnxQuantException(job.RecipePath ?? job.ModelPath,
                    $"has overlapping overrides: linears.overrides[{first}] ('{overrides[first].Match}' -> {RecipeFile.Name(overrides[first].Scheme)}) and " +
                    $"linears.overrides[{second}] ('{overrides[second].Match}' -> {RecipeFile.Name(overrides[second].Scheme)}) both match '{linear}' of {job.ModelPath}. " +
                    "Narrow one pattern so each linear gets one scheme", ExitCode.Usage);
    }

    // A pattern that matches nothing is most likely a typo.
    private static void WarnUnmatched(CliContext context, QuantizeJob job, LinearTable table)
    {
        var names = table.All.SelectMany(c => new[] { c.Name, c.QualifiedName }).Distinct().ToList();
        var overrides = job.Recipe.Linears.Overrides;
        for (int i = 0; i < overrides.Count; i++)
            if (!names.Any(n => LinearSelection.Matches(overrides[i].Match, n)))
                context.Error.WriteLine(job.FromRecipe
                    ? $"warning: linears.overrides[{i}].match '{overrides[i].Match}' of {job.RecipePath} matches no MatMul or Gemm of {job.ModelPath}"
                    : $"warning: --exclude '{overrides[i].Match}' matches no MatMul or Gemm of {job.ModelPath}");
    }

    // Eight windows of up to 128 tokens: one run per choice of each linear stays cheap; 32 gave MiniLM's 5-bit plan the
    // same cosine (0.9871 vs 0.9870) in three times the planning time (docs/architecture.md, "Mixed precision").
    private static List<int[]> ProbeWindows(CalibrationDataset dataset)
    {
        int length = Math.Min(dataset.SequenceLength, 128);
        return dataset.Samples.Take(8).Select(s => s[..length]).ToList();
    }

    // A few hundred tokens of whole windows: attention mixes a sequence's tokens, so the block loss runs real sequences.
    private static List<int[]> BlockWindows(CalibrationDataset dataset)
    {
        int length = Math.Min(dataset.SequenceLength, 128);
        return dataset.Samples.Take(4).Select(s => s[..length]).ToList();
    }

    // Before writing: the nodes the chosen provider has no kernel for (ONNX Runtime would run them elsewhere, with copies).
    /// <summary>
    /// The job's recipe with an <c>auto</c> mixed-precision ranking settled for this model: the model-output ranking
    /// where its cost (a forward pass per linear and choice) is affordable, each linear's own output otherwise; said in one line.
    /// </summary>
    private static Recipe SettleSensitivity(CliContext context, QuantizeJob job, LinearTable table)
    {
        var recipe = job.Recipe;
        if (!recipe.Passes.Any(p => p.ChoosesByModelSize))
            return recipe;
        var linears = table.Quantizable.ToList();
        long parameters = linears.Sum(c => (long)c.K * c.N);
        var settled = recipe.WithSensitivityFor(linears.Count, parameters);
        bool model = settled.Passes.Any(p => p.ProbesModelOutput);
        string option = job.FromRecipe ? "the bits-plan's \"sensitivity\"" : "--sensitivity";
        context.Error.WriteLine(model
            ? $"note: mixed precision ranks linears by the model's output error ({linears.Count} linears, {parameters / 1e6:F1}M weights: affordable); {option} linear is faster"
            : $"note: mixed precision ranks linears by their own output error ({linears.Count} linears, {parameters / 1e6:F1}M weights: the model-output ranking would take a forward pass per linear and choice); {option} model forces it");
        return settled;
    }

    private static int WidestK(LinearTable table) => table.Quantizable.Select(c => c.K).DefaultIfEmpty(0).Max();

    // A statistics file recorded for AWQ (512 rows) leaves GPTQ's H singular on wide linears: refuse it, naming the fix.
    private static void EnsureRowsForGptq(QuantizeJob job, string statsPath, CalibrationStats stats, LinearTable table)
    {
        foreach (var linear in table.Quantizable.OrderByDescending(c => c.K))
        {
            if (stats.Get(linear.Activation) is not { } tensor)
                continue;
            int needed = CalibrationSettings.GptqRowsNeeded(linear.K);
            // Only a file that dropped rows can be made again with more: an input that saw fewer tokens (a pooler reads one
            // per sample) holds all it had, and recording more rows would not change it.
            if (tensor.SampleRowCount >= needed || tensor.SampleRowCount >= tensor.TokenCount)
                continue;
            int suggested = Math.Max(CalibrationSettings.GptqSampleRows, needed);
            throw new OnnxQuantException(statsPath,
                $"holds {tensor.SampleRowCount} activation rows of '{linear.Activation}', but GPTQ needs at least {needed} for '{linear.Name}' "
                + $"(K = {linear.K}: fewer rows leave XᵀX singular). Record it again with `onnxquant calibrate {job.ModelPath} --sample-rows {suggested}`, "
                + $"or leave out {(job.FromRecipe ? "calibration.stats" : "--stats")} and let this command calibrate", ExitCode.Usage);
        }
    }

    private static void WarnAboutFallbacks(TextWriter stages, OnnxModel model, DeploymentTarget target)
    {
        var report = PlacementCheck.Check(model, DeploymentTargets.Provider(target));
        if (report.Fallbacks.Count > 0)
            stages.WriteLine(PlacementPrinter.Warning(report, ExecutionProviders.Key(report.Provider)));
    }

    // Every linear kept for a reason no option changes, or every one excluded: say so before calibrating.
    private static void EnsureSomethingToQuantize(string modelPath, IR.Graph graph, LinearTable table)
    {
        if (table.Quantizable.Any())
            return;
        EnsureNotQuantizedAlready(modelPath, graph, table);
        if (table.Count == 0)
            throw new OnnxQuantException(modelPath, "has no MatMul or Gemm node: there is nothing to quantize", ExitCode.Unsupported);
        throw new OnnxQuantException(modelPath,
            $"has no MatMul or Gemm that can be quantized with these options ({Reasons(table.All.Select(c => c.Reason))}); see `onnxquant inspect` for each node's verdict",
            ExitCode.Unsupported);
    }

    // Nothing left to quantize and quantized linears found: an earlier run (or another tool) quantized the model. Float
    // linears the options keep (the LM head, --exclude) and attention's products do not make it a float model.
    private static void EnsureNotQuantizedAlready(string modelPath, IR.Graph graph, LinearTable table)
    {
        if (table.Quantizable.Any())
            return;
        var found = graph.Nodes.Where(LinearAnalysis.IsQuantizedLinearOp).GroupBy(n => n.OpType)
            .Select(g => $"{g.Count()} {g.Key}").ToList();
        int dequantized = table.All.Count(c => c.Reason == KeepReason.AlreadyQuantized);
        if (dequantized > 0)
            found.Add($"{dequantized} MatMul/Gemm reading a DequantizeLinear weight");
        if (found.Count == 0)
            return;
        var kept = table.All.Where(c => c.Reason is not (KeepReason.AlreadyQuantized or KeepReason.ComputedWeight)).ToList();
        string rest = kept.Count == 0 ? "no floating-point MatMul/Gemm with a constant weight is left"
            : $"the {kept.Count} floating-point MatMul/Gemm left are kept ({Reasons(kept.Select(c => c.Reason))})";
        throw new OnnxQuantException(modelPath,
            $"is already quantized: it has {string.Join(", ", found)}, and {rest}. Quantize the floating-point model it was made from instead",
            ExitCode.Unsupported);
    }

    // Calibrating on ids needs no tokenizer, but held-out text does, and arrays (.npz) need held-out arrays: say what is
    // missing before calibrating, not after the model is written.
    private static void EnsureVerificationCanRead(QuantizeJob job, VerifyOptions verify)
    {
        var data = job.Recipe.Calibration.Data;
        string? held = verify.TextPath;
        if (data.Any(CalibrationData.IsArrays))
        {
            if (held is not null && CalibrationData.IsArrays(held))
                return;
            throw new OnnxQuantException(job.ModelPath,
                "is calibrated on arrays (.npz), so held-out text cannot verify it. Give held-out arrays in the same form with --verify-data (a .npz), or skip the check with --no-verify",
                ExitCode.Usage);
        }
        bool calibrationIsIds = job.Recipe.Calibration.Stats is not null || (data.Count > 0 && data.All(p => DataFiles.IsPreTokenized(p)));
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

    // Held-out data is checked now, as --data is, not after the model is written: ids against the vocabulary, text for
    // being UTF-8 text in a regular file.
    private static void EnsureHeldOutReadable(QuantizeJob job, VerifyOptions verify, SequenceLimits limits)
    {
        if (verify.TextPath is not { } held || !File.Exists(held) || CalibrationData.IsArrays(held))
            return;
        if (!DataFiles.IsPreTokenized(held))
        {
            HeldOutText.Read(held);
            return;
        }
        if (Vocabulary.Of(limits, job.ModelPath) is not { } vocabulary)
            return;
        var ids = new List<int>();
        DataFiles.Read(held, DataFormat.Auto, new System.Text.StringBuilder(), ids);
        vocabulary.EnsureContains(ids, 0, held, job.FromRecipe ? "verification.data" : "--verify-data");
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

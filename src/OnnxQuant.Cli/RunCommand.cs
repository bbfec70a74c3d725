using System.CommandLine;
using System.Globalization;
using OnnxQuant.Calibrate;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Calibrate.Verification;
using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Recipes;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>
/// `onnxquant run recipe.json model.onnx|genai-folder [-o out]`: validates the recipe (docs/recipes.md) before any work, then runs
/// it through the same skeleton as `smooth` and `awq` (<see cref="QuantizeCommand"/>): each rewrite only on the linears
/// the recipe assigns it, provenance in the written model, gates after verification (exit 6).
/// </summary>
public static class RunCommand
{
    public static Command Create(CliContext context)
    {
        var recipeFile = new Argument<string>("recipe") { Description = "The recipe file (JSON; docs/recipes.md)." };
        var model = new Argument<string>("model") { Description = "The ONNX model file, or an ONNX Runtime GenAI model folder (then the output is a folder too)." };
        var output = new Option<string?>("--output", "-o") { Description = "The model to write (default: <model>.<recipe name>.onnx beside the model; for a GenAI folder, <folder>-<recipe name>)." };
        var latency = new Option<int>("--latency") { Description = "Also time one inference of this many tokens with both models (0: off).", DefaultValueFactory = _ => 0 };
        var runtime = new SessionArguments();
        var json = CliContext.JsonOption();
        var wholeGraph = CalibrationArguments.WholeGraphOption();
        var blockSessions = CalibrationArguments.BlockSessionsOption();
        var command = new Command("run", "Run a recipe file: passes in order, a scheme per linear by name pattern, calibration, verification and gates.")
        {
            recipeFile, model, output, latency, runtime.Device, runtime.Threads, wholeGraph, blockSessions, json,
        };
        command.SetAction(parse => CommandRunner.Run(context, parse, () =>
        {
            string recipePath = parse.GetValue(recipeFile)!;
            string modelArgument = parse.GetValue(model)!;
            var recipe = RecipeFile.Read(recipePath);
            if (parse.GetValue(output) is { } o && Path.GetFullPath(o) == Path.GetFullPath(modelArgument))
                throw new OnnxQuantException(o, "is the input model; write the result to another file", ExitCode.Usage);
            var session = runtime.Settings(parse, context);
            int latencyTokens = EvalCommand.AtLeast(parse.GetValue(latency), 0, "--latency");
            // Last before the work: for a GenAI folder this creates the output folder (named after the recipe).
            var (modelPath, outPath, genai) = GenAiOutput.Resolve(modelArgument, parse.GetValue(output), Path.GetFileNameWithoutExtension(recipePath),
                m => DefaultOutput(m, recipePath));
            if (Path.GetFullPath(outPath) == Path.GetFullPath(modelPath))
                throw new OnnxQuantException(outPath, "is the input model; write the result to another file", ExitCode.Usage);
            var job = new QuantizeJob(modelPath, outPath, recipe, session, $"running {recipe.Pipeline()}",
                latencyTokens, 10, recipePath) { GenAi = genai, Sessions = CalibrationArguments.SessionsOf(parse, wholeGraph, blockSessions) };
            var outcome = QuantizeCommand.Run(context, job);
            var summary = RunSummary.Create(modelPath, outPath, recipePath, outcome);
            if (parse.GetValue(json))
                JsonOutput.Write(context.Out, summary);
            else
                RunSummary.Print(context.CreateConsole(), summary);
            return GateArguments.Verdict(context, outcome.Gates, outPath);
        }));
        return command;
    }

    /// <summary>model.onnx + mixed.json -> model.mixed.onnx beside the model.</summary>
    private static string DefaultOutput(string modelPath, string recipePath)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".";
        return Path.Combine(folder, $"{Path.GetFileNameWithoutExtension(modelPath)}.{Path.GetFileNameWithoutExtension(recipePath)}.onnx");
    }
}

/// <summary>What `run` tells at the end; also its --json document.</summary>
public sealed record RunSummary(string Model, string Output, string Recipe, IReadOnlyList<RunStepSummary> Passes, int Linears,
    [property: System.Text.Json.Serialization.JsonPropertyName("linears_w8a8")] int LinearsW8A8,
    [property: System.Text.Json.Serialization.JsonPropertyName("linears_w4")] int LinearsW4, IReadOnlyList<KeptLinear> LinearsKept, double CompileSeconds, VerificationOutcome? Verification, LatencyReport? Latency,
    IReadOnlyList<GateResult> Gates)
{
    internal static RunSummary Create(string model, string output, string recipe, QuantizeOutcome outcome)
    {
        var w8 = outcome.Analyses.Find<W8A8Report>()?.Decisions ?? [];
        var w4 = outcome.Analyses.Find<W4Report>()?.Decisions ?? [];
        var quantized = w8.Where(d => d.Quantized).Select(d => (d.Scope, d.Linear)).Concat(w4.Where(d => d.Quantized).Select(d => (d.Scope, d.Linear))).ToHashSet();
        // A linear is kept when no rewrite quantized it; its reason is the analysis' (or "float by the recipe").
        var kept = outcome.Linears.All.Where(c => !quantized.Contains((c.Scope, c.Name)))
            .Select(c => c.Quantizable
                ? new KeptLinear(c.QualifiedName, KeepReason.ExcludedByPattern, "excluded: no rewrite of the recipe quantized it")
                : new KeptLinear(c.QualifiedName, c.Reason, c.ReasonText)).ToList();
        var steps = outcome.Steps.Select(s => new RunStepSummary(s.Pass, s.Result.Changed, s.Elapsed.TotalSeconds)).ToList();
        return new RunSummary(model, output, recipe, steps, outcome.Linears.Count, w8.Count(d => d.Quantized), w4.Count(d => d.Quantized), kept,
            outcome.CompileSeconds, outcome.Verification, outcome.Latency, outcome.Gates);
    }

    public static void Print(IAnsiConsole console, RunSummary s)
    {
        var inv = CultureInfo.InvariantCulture;
        var table = new Table().Border(TableBorder.Simple).Title($"recipe {Markup.Escape(s.Recipe)}");
        table.AddColumn("pass");
        table.AddColumn("changed the model");
        table.AddColumn(new TableColumn("seconds").RightAligned());
        foreach (var step in s.Passes)
            table.AddRow(step.Pass, step.Changed ? "yes" : "no", step.Seconds.ToString("0.0", inv));
        console.Write(table);
        console.MarkupLineInterpolated($"[bold]{s.Model}[/] -> [bold]{s.Output}[/] in {s.CompileSeconds.ToString("0.0", inv)} s");
        console.MarkupLineInterpolated($"{s.Linears} MatMul/Gemm: {s.LinearsW8A8} W8A8, {s.LinearsW4} W4{KeptSummary.Text(s.LinearsKept)}");
        if (s.Verification is { Reason: { } why })
            console.MarkupLineInterpolated($"held-out check: did not run: {why}");
        if (s.Verification?.Report is { } v)
        {
            string figures = string.Create(inv, $"relative error {v.RelativeError:0.0000}");
            if (v.PerplexityOriginal is { } p0 && v.PerplexityEmitted is { } p1)
                figures += $", perplexity {Format.Figure(p0, "0.000")} -> {Format.Figure(p1, "0.000")}";
            if (v.Top1Agreement is { } top1)
                figures += ", top-1 agreement " + top1.ToString("P2", inv);
            if (v.MeanCosine is { } cos)
                figures += ", mean cosine " + cos.ToString("0.00000", inv);
            console.MarkupLineInterpolated($"held-out check ({v.Samples} samples of {v.Data}): {figures}");
        }
        foreach (var gate in s.Gates)
            console.MarkupLineInterpolated($"gate {gate.Describe()}");
        if (s.Latency is { } l)
            console.MarkupLineInterpolated($"latency, {l.Tokens} tokens on {l.Device}: {l.OriginalMs.ToString("0.0", inv)} ms -> {l.EmittedMs.ToString("0.0", inv)} ms ({l.Speedup.ToString("0.00", inv)}x)");
    }
}

public sealed record RunStepSummary(string Pass, bool Changed, double Seconds);

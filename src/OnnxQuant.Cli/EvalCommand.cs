using System.CommandLine;
using System.Globalization;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Evaluation;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;

namespace OnnxQuant.Cli;

/// <summary>
/// `onnxquant eval model.onnx [--data text.txt] [--reference fp.onnx]`: a causal LM's sliding-window perplexity on
/// held-out text (Persuasion by default), or an encoder's embedding agreement with its original; optionally latency.
/// Progress goes to stderr, the result (or --json) to stdout.
/// </summary>
public static class EvalCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Argument<string>("model") { Description = "The ONNX model to evaluate." };
        var data = new Option<string?>("--data") { Description = "Evaluation text (UTF-8). Default: Jane Austen's Persuasion, which calibration never reads." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer file or folder (default: beside the model, else beside --reference)." };
        var reference = new Option<string?>("--reference") { Description = "Model to compare with (the FP32 original): perplexity of both and top-1 agreement for LMs; required for encoders (embedding cosine, nearest-neighbour agreement)." };
        var contextTokens = new Option<int>("--context") { Description = "Causal LMs: tokens per window.", DefaultValueFactory = _ => 256 };
        var stride = new Option<int?>("--stride") { Description = "Causal LMs: tokens between window starts (default: --context, non-overlapping windows); each token is scored once, with at least context - stride tokens before it." };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "Causal LMs: evaluate only the first N tokens of the text." };
        var sentences = new Option<int>("--sentences") { Description = "Encoders: number of sentences, evenly spaced through the text.", DefaultValueFactory = _ => 256 };
        var latency = new Option<int>("--latency") { Description = "Also time a prefill of N tokens and a 1-token forward (median; with --reference both models). 0: no timing.", DefaultValueFactory = _ => 0 };
        var latencyRuns = new Option<int>("--latency-runs") { Description = "Timed runs per latency figure.", DefaultValueFactory = _ => 10 };
        var runtime = new SessionArguments(threadsUse: "ONNX Runtime intra-op threads");
        var task = new TaskOption();
        var json = CliContext.JsonOption();
        var gates = new GateArguments();
        var command = new Command("eval", "Measure a model on held-out text: perplexity (causal LM) or embedding agreement with --reference (encoder).")
        {
            model, data, tokenizer, reference, contextTokens, stride, maxTokens, sentences, latency, latencyRuns, task.Option, runtime.Device, runtime.Threads, json,
        };
        foreach (var option in gates.All)
            command.Options.Add(option);
        command.SetAction(parse => CommandRunner.Run(context, parse, () =>
        {
            string modelPath = parse.GetValue(model)!;
            var bounds = gates.Bounds(parse);
            var (limit, detected) = ContextOf(modelPath, task.Value(parse));
            // Gates compare with the reference: without one there is no figure to hold them to.
            GateArguments.EnsureMeasurable(bounds, parse.GetValue(reference) is not null, "without --reference there is no original to compare with", detected, modelPath, fromRecipe: false);
            int windowLength = AtLeast(ContextLengths.Resolve(parse, contextTokens, limit, modelPath, context.Error, "evaluating on windows of"), 2, "--context");
            var options = new EvalOptions
            {
                TextPath = parse.GetValue(data),
                TokenizerPath = parse.GetValue(tokenizer),
                ReferencePath = parse.GetValue(reference),
                Context = windowLength,
                Stride = parse.GetValue(stride) is { } s ? AtLeast(s, 1, "--stride") : null,
                MaxTokens = parse.GetValue(maxTokens) is { } m ? AtLeast(m, 2, "--max-tokens") : null,
                Sentences = AtLeast(parse.GetValue(sentences), 2, "--sentences"),
                LatencyTokens = AtLeast(parse.GetValue(latency), 0, "--latency"),
                LatencyRuns = AtLeast(parse.GetValue(latencyRuns), 1, "--latency-runs"),
                MaxSentenceTokens = Math.Min(new EvalOptions().MaxSentenceTokens, limit?.Length ?? int.MaxValue),
                Task = task.Value(parse),
                Session = runtime.Settings(parse, context),
            };
            // Tokenizing a whole book takes seconds before the first window runs: say what is happening first.
            context.Error.WriteLine($"evaluating {modelPath} on {Path.GetFileName(options.TextPath) ?? "the held-out default text (Persuasion)"}");
            var report = EvalProgress.Run(context, "evaluating", (progress, cancel) => Evaluator.Run(modelPath, options, progress, cancel));
            if (report.Notice is not null)
                context.Error.WriteLine($"note: {report.Notice}");
            var verdicts = bounds.Any ? GateArguments.Check(bounds, report) : [];
            if (parse.GetValue(json))
                JsonOutput.Write(context.Out, WithGates(report, verdicts));
            else
                EvalPrinter.Print(context.CreateConsole(), report);
            if (!parse.GetValue(json))
                foreach (var verdict in verdicts)
                    context.Out.WriteLine($"gate {verdict.Describe()}");
            return GateArguments.Verdict(context, verdicts, null);
        }));
        return command;
    }

    // The longest sequence the model runs, from its structure (docs/architecture.md, "Context limits").
    private static (ContextLimit? Limit, ModelTask Task) ContextOf(string modelPath, ModelTask? task)
    {
        using var loaded = ModelFile.Load(modelPath);
        return (SequenceLimits.Find(loaded.Graph).Context, ModelTaskDetection.Detect(loaded.Graph, task).Task);
    }

    // The report's fields with a "gates" array beside them (only when gates were given: the document is unchanged otherwise).
    private static System.Text.Json.Nodes.JsonNode WithGates(EvalReport report, IReadOnlyList<GateResult> verdicts)
    {
        var node = System.Text.Json.JsonSerializer.SerializeToNode(report, JsonOutput.Options)!;
        if (verdicts.Count > 0)
            node["gates"] = System.Text.Json.JsonSerializer.SerializeToNode(verdicts, JsonOutput.Options);
        return node;
    }

    /// <summary>The value, or a usage error naming the option when it is below the minimum (shared by the commands' numeric options).</summary>
    internal static int AtLeast(int value, int minimum, string option) =>
        value >= minimum ? value : throw new OnnxQuantException(null, $"{option} must be at least {minimum.ToString(CultureInfo.InvariantCulture)} (got {value.ToString(CultureInfo.InvariantCulture)})", ExitCode.Usage);
}

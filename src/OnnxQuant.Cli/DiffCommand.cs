using System.CommandLine;
using OnnxQuant.Review;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Diff;
using OnnxQuant.Calibrate.Report;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;
using OnnxQuant.Recipes;
using Spectre.Console;

namespace OnnxQuant.Cli;

/// <summary>
/// `onnxquant diff before.onnx after.onnx [--nodes] [--numeric] [--json]`: what a rewrite decided, one row per linear with
/// a constant weight (before -> after scheme and bytes, smoothing, float channels, or why it stayed float), then the
/// whole-graph changes; the raw node and initializer lists with --nodes; with --numeric each linear's output error on
/// held-out samples, worst first.
/// </summary>
public static class DiffCommand
{
    public static Command Create(CliContext context)
    {
        var before = new Argument<string>("before") { Description = "The original model." };
        var after = new Argument<string>("after") { Description = "The rewritten model." };
        var nodes = new Option<bool>("--nodes") { Description = "Also list the nodes and initializers added, removed and rewritten (by name)." };
        var numeric = new Option<bool>("--numeric") { Description = "Run both models on held-out samples and rank the linears by the relative error of their output against the original's same tensor (and the model output's)." };
        var data = new Option<string[]>("--data") { Description = "--numeric: text, .jsonl or .ids files. Default: Jane Austen's Persuasion (held out from calibration).", AllowMultipleArgumentsPerToken = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "--numeric: tokenizer file or folder (default: next to the original model)." };
        var samples = new Option<int?>("--samples") { Description = "--numeric: samples (default: 8 windows for causal LMs, 32 sentences for encoders)." };
        var seqLen = new Option<int>("--seq-len") { Description = "--numeric: tokens per window (the longest sentence for encoders).", DefaultValueFactory = _ => 128 };
        var worst = new Option<int>("--worst") { Description = "--numeric: how many of the worst linears the printed --exclude option keeps in float.", DefaultValueFactory = _ => 3 };
        var runtime = new SessionArguments(scope: "--numeric: ");
        var html = new Option<string?>("--html") { Description = "Write a self-contained page (table, error-by-depth chart, input panels of the worst linears) to this .html file; implies --numeric." };
        var json = CliContext.JsonOption();
        var command = new Command("diff",
            "Compare an original model with its rewrite: one row per MatMul/Gemm with a constant weight (before: op, dtype, bytes; after: "
            + "scheme, bytes; smoothing; float channels; why a linear stayed float), whole-graph changes (norms changed in place, inserted "
            + "Muls, opsets, metadata). Attention's products of two activations have no weight and are only named. The rows' bytes plus "
            + "the whole-graph buckets add up to the change in initializer bytes.")
        {
            before, after, nodes, numeric, html, data, tokenizer, samples, seqLen, worst, runtime.Device, runtime.Threads, json,
        };
        command.SetAction(parse => CommandRunner.Run(context, parse, () =>
        {
            string beforePath = parse.GetValue(before)!, afterPath = parse.GetValue(after)!;
            ModelDiff raw;
            LinearDiff linears;
            IReadOnlyList<ProvenanceChange> provenance;
            using (var a = ModelFile.Load(beforePath))
            using (var b = ModelFile.Load(afterPath))
            {
                raw = ModelDiff.Compare(a, b);
                linears = LinearDiff.Compare(a, b, raw);
                provenance = ProvenanceChange.Compare(a.Header, b.Header);
            }
            NumericDiffReport? errors = null;
            string? exclude = null;
            string? page = parse.GetValue(html);
            if (page is not null && !page.EndsWith(".html", StringComparison.OrdinalIgnoreCase) && !page.EndsWith(".htm", StringComparison.OrdinalIgnoreCase))
                throw new OnnxQuantException(page, "--html must name a .html file", ExitCode.Usage);
            if (parse.GetValue(numeric) || page is not null)
            {
                var options = new NumericDiffOptions
                {
                    DataPaths = parse.GetValue(data) ?? [],
                    TokenizerPath = parse.GetValue(tokenizer),
                    Samples = parse.GetValue(samples),
                    SequenceLength = EvalCommand.AtLeast(parse.GetValue(seqLen), 2, "--seq-len"),
                    Session = runtime.Settings(parse, context),
                };
                var tensors = linears.Linears.Select(r => new TensorToCompare(r.Name, r.Output, r.OutputRescaled, r.Input, r.InputRescaled)).ToList();
                errors = EvalProgress.Run(context, "comparing", (progress, cancel) => NumericDiff.Run(beforePath, afterPath, tensors, options, progress, cancel));
                int k = EvalCommand.AtLeast(parse.GetValue(worst), 1, "--worst");
                exclude = NumericDiffPrinter.ExcludeOption(errors, k);
                if (page is not null)
                    WritePage(page, DiffPage.Html(Path.GetFileName(beforePath), Path.GetFileName(afterPath), linears, errors, Math.Max(k, 4), exclude));
            }
            bool withNodes = parse.GetValue(nodes);
            if (parse.GetValue(json))
            {
                JsonOutput.Write(context.Out, new DiffReport(raw.Before, raw.After, linears.Linears, linears.ComputedProducts, linears.Graph,
                    withNodes ? raw : null, errors, exclude) { Embeddings = linears.Embeddings, Provenance = provenance });
                return (int)ExitCode.Ok;
            }
            var console = context.CreateConsole();
            DiffPrinter.PrintHeader(console, raw);
            if (!raw.IsEmpty)
                LinearDiffPrinter.Print(console, linears);
            if (withNodes && !raw.IsEmpty)
                DiffPrinter.Print(console, raw);
            DiffPrinter.PrintProvenance(console, provenance);
            if (errors is not null)
            {
                console.WriteLine();
                NumericDiffPrinter.Print(console, errors, linears, exclude);
            }
            return (int)ExitCode.Ok;
        }));
        return command;
    }

    private static void WritePage(string path, string content)
    {
        try
        {
            File.WriteAllText(path, content, new System.Text.UTF8Encoding(false));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new OnnxQuantException(path, $"cannot be written: {e.Message}", ExitCode.OutputError, e);
        }
    }
}

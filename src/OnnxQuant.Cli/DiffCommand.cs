using System.CommandLine;
using OnnxQuant.Analysis;
using OnnxQuant.IO;

namespace OnnxQuant.Cli;

/// <summary>
/// `onnxquant diff before.onnx after.onnx [--nodes] [--json]`: what a rewrite decided, one row per linear with a constant
/// weight (before -> after scheme and bytes, smoothing, float channels, or why it stayed float), then the whole-graph
/// changes; the raw node and initializer lists with --nodes.
/// </summary>
public static class DiffCommand
{
    public static Command Create(CliContext context)
    {
        var before = new Argument<string>("before") { Description = "The original model." };
        var after = new Argument<string>("after") { Description = "The rewritten model." };
        var nodes = new Option<bool>("--nodes") { Description = "Also list the nodes and initializers added, removed and rewritten (by name)." };
        var json = CliContext.JsonOption();
        var command = new Command("diff",
            "Compare an original model with its rewrite: one row per MatMul/Gemm with a constant weight (before: op, dtype, bytes; after: "
            + "scheme, bytes; smoothing; float channels; why a linear stayed float), whole-graph changes (norms changed in place, inserted "
            + "Muls, opsets, metadata). Attention's products of two activations have no weight and are only named. The rows' bytes plus "
            + "the whole-graph buckets add up to the change in initializer bytes.")
        {
            before,
            after,
            nodes,
            json,
        };
        command.SetAction(parse => CommandRunner.Run(context, parse, () =>
        {
            using var a = ModelFile.Load(parse.GetValue(before)!);
            using var b = ModelFile.Load(parse.GetValue(after)!);
            var raw = ModelDiff.Compare(a, b);
            var linears = LinearDiff.Compare(a, b, raw);
            bool withNodes = parse.GetValue(nodes);
            if (parse.GetValue(json))
            {
                JsonOutput.Write(context.Out, new DiffReport(raw.Before, raw.After, linears.Linears, linears.ComputedProducts, linears.Graph,
                    withNodes ? raw : null));
                return (int)ExitCode.Ok;
            }
            var console = context.CreateConsole();
            DiffPrinter.PrintHeader(console, raw);
            if (raw.IsEmpty)
                return (int)ExitCode.Ok;
            LinearDiffPrinter.Print(console, linears);
            if (withNodes)
                DiffPrinter.Print(console, raw);
            return (int)ExitCode.Ok;
        }));
        return command;
    }
}

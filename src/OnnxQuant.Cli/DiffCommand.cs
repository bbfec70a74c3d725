using System.CommandLine;
using OnnxQuant.Analysis;
using OnnxQuant.IO;

namespace OnnxQuant.Cli;

/// <summary>`onnxquant diff before.onnx after.onnx [--json]`: what a rewrite changed.</summary>
public static class DiffCommand
{
    public static Command Create(CliContext context)
    {
        var before = new Argument<string>("before") { Description = "The original model." };
        var after = new Argument<string>("after") { Description = "The rewritten model." };
        var json = CliContext.JsonOption();
        var command = new Command("diff", "Compare two models: nodes, initializers, opsets, graph inputs/outputs and size on disk.")
        {
            before,
            after,
            json,
        };
        command.SetAction(parse => CommandRunner.Run(context, parse, () =>
        {
            using var a = ModelFile.Load(parse.GetValue(before)!);
            using var b = ModelFile.Load(parse.GetValue(after)!);
            var diff = ModelDiff.Compare(a, b);
            if (parse.GetValue(json))
                JsonOutput.Write(context.Out, diff);
            else
                DiffPrinter.Print(context.CreateConsole(), diff);
            return (int)ExitCode.Ok;
        }));
        return command;
    }
}

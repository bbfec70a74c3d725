using System.CommandLine;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.Recipes;

namespace OnnxQuant.Cli;

/// <summary>`onnxquant inspect model.onnx [--json]`: what the model is and what OnnxQuant can quantize in it.</summary>
public static class InspectCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Argument<string>("model") { Description = "The ONNX model file." };
        var json = CliContext.JsonOption();
        var command = new Command("inspect", "Show a model's header, inputs/outputs, ops, parameters and its quantizable linears.")
        {
            model,
            json,
        };
        command.SetAction(parse => CommandRunner.Run(context, parse, () =>
        {
            using var loaded = ModelFile.Load(parse.GetValue(model)!);
            var summary = ModelSummary.Create(loaded) with
            {
                Provenance = ModelProvenance.Read(loaded.Header).Select(e => new MetadataEntry(e.Key, e.Value)).ToList(),
            };
            if (parse.GetValue(json))
                JsonOutput.Write(context.Out, summary);
            else
                InspectPrinter.Print(context.CreateConsole(), summary);
            return (int)ExitCode.Ok;
        }));
        return command;
    }
}

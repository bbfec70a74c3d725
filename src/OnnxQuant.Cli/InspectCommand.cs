using System.CommandLine;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.Placement;
using OnnxQuant.Recipes;

namespace OnnxQuant.Cli;

/// <summary>
/// `onnxquant inspect model.onnx [--ep cpu|cuda|tensorrt|dml] [--json]`: what the model is, what OnnxQuant can quantize in
/// it and, with --ep, which nodes that execution provider has no kernel for.
/// </summary>
public static class InspectCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Argument<string>("model") { Description = "The ONNX model file (or an ONNX Runtime GenAI folder)." };
        var json = CliContext.JsonOption();
        var ep = new Option<ExecutionProvider?>("--ep")
        {
            Description = "List the nodes this ONNX Runtime execution provider has no kernel for (cpu, cuda, tensorrt, dml; from ORT 1.31's registrations).",
        };
        var command = new Command("inspect", "Show a model's header, inputs/outputs, ops, parameters and its quantizable linears.")
        {
            model,
            ep,
            json,
        };
        command.SetAction(parse => CommandRunner.Run(context, parse, () =>
        {
            // A GenAI folder is inspected through the decoder its genai_config.json names.
            using var loaded = ModelFile.Load(GenAiFolder.Find(parse.GetValue(model)!)?.ModelPath ?? parse.GetValue(model)!);
            var summary = ModelSummary.Create(loaded) with
            {
                Provenance = ModelProvenance.Read(loaded.Header).Select(e => new MetadataEntry(e.Key, e.Value)).ToList(),
            };
            var placement = parse.GetValue(ep) is { } provider ? PlacementCheck.Check(loaded, provider) : null;
            if (parse.GetValue(json))
                JsonOutput.Write<object>(context.Out, placement is null ? summary : PlacementPrinter.WithPlacement(summary, placement));
            else
            {
                var console = context.CreateConsole();
                InspectPrinter.Print(console, summary);
                if (placement is not null)
                    PlacementPrinter.Print(console, placement);
            }
            return (int)ExitCode.Ok;
        }));
        return command;
    }
}

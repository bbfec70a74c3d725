using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using OnnxQuant.Calibrate;
using OnnxQuant.Advice;
using OnnxQuant.Analysis;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.IO;
using OnnxQuant.Placement;
using OnnxQuant.Recipes;

namespace OnnxQuant.Cli;

/// <summary>
/// `onnxquant advise model.onnx [--stats f | --data ...] [--target cpu|cuda|tensorrt] [--max-error E] [--json | --print-recipe]`: profile
/// the activations before choosing a method. From a calibration, each layer's outlier severity and the output error of
/// naive W8A8, SmoothQuant, per-token dynamic, W4 RTN and W4 AWQ measured on the recorded rows by fake quantization; a
/// recommendation for the target and the recipe that applies it (docs/recipes.md). Progress on stderr.
/// </summary>
public static class AdviseCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Argument<string>("model") { Description = "The ONNX model file (or an ONNX Runtime GenAI folder)." };
        var calibrationArguments = new CalibrationArguments();
        var target = new Option<DeploymentTarget?>("--target") { Description = "Where the model will run (cpu, cuda, tensorrt): only schemes whose ops it runs natively are recommended." };
        var maxError = new Option<double?>("--max-error") { Description = "Largest acceptable expected output error (RMS over linears of ||Yq - Y|| / ||Y||): the most compact scheme within it is recommended." };
        var exclude = new Option<string[]>("--exclude") { Description = "Linears to leave out of the advice (kept in float): a glob (*, ?) or /regex/; one per --exclude, repeat it for several." };
        var lmHead = new Option<bool>("--include-lm-head") { Description = "Measure the LM head too." };
        var runtime = new SessionArguments();
        var json = CliContext.JsonOption();
        var printRecipe = new Option<bool>("--print-recipe") { Description = "Print only the recommended recipe (docs/recipes.md) on stdout, ready to save and give to `onnxquant run`; the tables go nowhere." };
        var command = new Command("advise", "Profile activations and measure each scheme's expected error per layer; recommend a scheme and print its recipe.")
        {
            model, target, maxError, exclude, lmHead, runtime.Device, runtime.Threads, json, printRecipe,
        };
        foreach (var option in calibrationArguments.All)
            command.Options.Add(option);
        command.SetAction(parse => CommandRunner.Run(context, parse, () =>
        {
            string modelPath = GenAiFolder.Find(parse.GetValue(model)!)?.ModelPath ?? parse.GetValue(model)!;
            if (parse.GetValue(maxError) is { } bound && !(bound > 0 && bound < 10))
                throw new OnnxQuantException(null, $"--max-error must be a relative error above 0 and below 10, such as 0.05 (got {bound.ToString(CultureInfo.InvariantCulture)})", ExitCode.Usage);
            using var loaded = ModelFile.Load(modelPath);
            var selection = new LinearSelection(parse.GetValue(exclude), parse.GetValue(lmHead));
            var table = LinearAnalysis.Analyze(loaded.Graph, selection);
            if (!table.Quantizable.Any())
                throw new OnnxQuantException(modelPath, "has no MatMul or Gemm that can be quantized with these options; see `onnxquant inspect` for each node's verdict", ExitCode.Unsupported);
            var session = runtime.Settings(parse, context);
            var calibration = calibrationArguments.Settings(parse);
            var calibrated = CalibrationArguments.Obtain(context, calibration, calibration.SampleRows ?? CalibrationSettings.DefaultSampleRows, "--seq-len", loaded, modelPath, session, SequenceLimits.Find(loaded.Graph), context.Error,
                ModelTaskDetection.Detect(loaded.Graph).Task, CalibrationArguments.SessionsOf(parse, calibrationArguments.WholeGraph, calibrationArguments.BlockSessions));

            var quantizable = table.Quantizable.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
            int tenth = -1;
            var layers = LayerEstimates.Measure(loaded.Graph, calibrated.Stats, quantizable, (done, total) =>
            {
                int now = done * 10 / total;
                if (now != tenth)
                    context.Error.WriteLine($"measuring schemes: {done} of {total} layers");
                tenth = now;
            }, context.Cancellation);
            if (layers.Count == 0)
                throw new OnnxQuantException(modelPath, "has no quantizable linear whose input the calibration recorded; calibrate this model (without --stats from another one)", ExitCode.BadInput);
            var report = Advisor.Advise(layers, parse.GetValue(target), parse.GetValue(maxError));
            var recipe = AdviceRecipe.Build(report, parse.GetValue(exclude) ?? [], parse.GetValue(lmHead), calibrated.Stats.Info, calibration);
            if (parse.GetValue(printRecipe))
                context.Out.WriteLine(RecipeWriter.Format(recipe));
            else if (parse.GetValue(json))
                JsonOutput.Write(context.Out, new { model = modelPath, report.Target, report.MaxError, report.Recommendation, report.Schemes, report.Layers, recipe = JsonNode.Parse(RecipeWriter.Format(recipe)) });
            else
                AdvisePrinter.Print(context.CreateConsole(), modelPath, report, recipe);
            return (int)ExitCode.Ok;
        }));
        return command;
    }
}

using System.CommandLine;
using System.Globalization;
using OnnxQuant.Calibrate;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Calibrate.Verification;
using OnnxQuant.Analysis;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Placement;
using OnnxQuant.Recipes;

namespace OnnxQuant.Cli;

/// <summary>
/// `onnxquant smooth model.onnx [--data ...] [-o out.onnx] [--no-quantize] [--alpha auto|A] [--format ...] [--stats f]
/// [--insert-mul] [--json] [--device ...]`: calibrate (or read --stats) -> SmoothQuant -> W8A8 rewrite -> write ->
/// verify on held-out text. Progress on stderr; the summary table (or --json) on stdout.
/// </summary>
public static class SmoothCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Argument<string>("model") { Description = "The ONNX model file, or an ONNX Runtime GenAI model folder (then the output is a folder too)." };
        var calibrationArguments = new CalibrationArguments();
        var verification = new VerificationArguments();
        var output = new Option<string?>("--output", "-o") { Description = "The model to write (default: <model>.sq.onnx, or <model>.smoothed.onnx with --no-quantize)." };
        var noQuantize = new Option<bool>("--no-quantize") { Description = "Write only the smoothed floating-point model (no W8A8 rewrite)." };
        var alpha = new Option<string>("--alpha") { Description = "Migration strength: 'auto' searches it per group on the calibration rows, or a fixed value in [0, 1]; 'none' skips smoothing (naive W8A8, for comparison).", DefaultValueFactory = _ => "auto" };
        var format = new Option<W8A8Format>("--format") { Description = "int8: QuantizeLinear + MatMulInteger (CUDA EP and CPU); dynamic: per-token scales at run time; qlinear: QLinearMatMul (CPU); qdq: Q/DQ pairs (TensorRT).", DefaultValueFactory = _ => W8A8Format.Int8 };
        var insertMul = new Option<bool?>("--insert-mul") { Description = "Smooth activations that cannot take s in place (residual-fed norms, GELU outputs) through a Mul(1/s). Default: on when quantizing (the Mul sits right before the activation quantizer), off with --no-quantize." };
        var scope = new Option<SmoothingScope>("--scope") { Description = "all: every linear input; norm: only norm-fed inputs (the SmoothQuant reference).", DefaultValueFactory = _ => SmoothingScope.All };
        var exclude = new Option<string[]>("--exclude") { Description = "Keep linears in floating point whose node name, or path as inspect prints it, matches: a glob (*, ?) or /regex/; one per --exclude, repeat it for several." };
        var lmHead = new Option<bool>("--include-lm-head") { Description = "Quantize the LM head (the linear producing the logits) too." };
        var reducedRange = new Option<bool>("--reduced-range") { Description = "7-bit weights (±63): exact on CPUs without VNNI, whose int8 kernel saturates 16-bit pair sums with full-range weights." };
        var unsigned = new Option<bool>("--uint8-activations") { Description = "uint8 activations (zero point 128) for ONNX Runtime's fast CPU kernels (int8 x int8 MatMulInteger is slow there); the CUDA EP runs int8 activations only." };
        var target = TargetOption.Create();
        var floatOutliers = new Option<float?>("--float-outliers") { Description = "LLM.int8()'s rule: keep every activation channel whose calibrated max |x| exceeds this threshold (bitsandbytes uses 6.0) in floating point, instead of up to 4 channels where they halve the error. int8 and qlinear formats." };
        var embeddingBits = new Option<int?>("--quantize-embeddings") { Description = "Store the token embedding as 4- or 8-bit blocks (com.microsoft GatherBlockQuantized, blocks of 128 or fewer)." };
        var runtime = new SessionArguments();
        var json = CliContext.JsonOption();
        var gates = new GateArguments();
        var printRecipe = new Option<bool>("--print-recipe") { Description = "Print the recipe this command line amounts to (docs/recipes.md) and stop; `onnxquant run` on it writes the same model." };
        var command = new Command("smooth", "SmoothQuant W8A8: migrate activation outliers into the weights, then quantize weights and activations to int8.")
        {
            model, output, noQuantize, alpha, format, insertMul, scope, exclude, lmHead, reducedRange, unsigned, floatOutliers, embeddingBits,
            target, runtime.Device, runtime.Threads, json,
        };
        foreach (var option in calibrationArguments.All.Concat(verification.All).Concat(gates.All).Append(printRecipe))
            command.Options.Add(option);
        command.SetAction(parse => CommandRunner.Run(context, parse, () =>
        {
            string modelArgument = parse.GetValue(model)!;
            bool quantize = !parse.GetValue(noQuantize);
            string alphaText = parse.GetValue(alpha)!;
            bool noSmoothing = alphaText.Equals("none", StringComparison.OrdinalIgnoreCase);
            if (noSmoothing && !quantize)
                throw new OnnxQuantException(null, "--alpha none with --no-quantize would leave the model as it is", ExitCode.Usage);
            float? fixedAlpha = noSmoothing ? null : ParseAlpha(alphaText);
            if (parse.GetValue(output) is { } o && Path.GetFullPath(o) == Path.GetFullPath(modelArgument))
                throw new OnnxQuantException(o, "is the input model; write the result to another file", ExitCode.Usage);
            var session = runtime.Settings(parse, context);
            var chosenTarget = parse.GetValue(target);
            // --target picks the form its provider runs; an explicit --format or --uint8-activations still wins.
            var chosenFormat = chosenTarget is { } t && !ContextLengths.Explicit(parse, format) ? DeploymentTargets.Format(t) : parse.GetValue(format);
            var outlierThreshold = parse.GetValue(floatOutliers);
            CheckFloatOutliers(outlierThreshold, chosenFormat, quantize, noSmoothing);
            var w8a8 = new W8A8Options
            {
                Format = chosenFormat,
                ReducedRangeWeights = parse.GetValue(reducedRange),
                UnsignedActivations = chosenTarget is { } u && !ContextLengths.Explicit(parse, unsigned) ? DeploymentTargets.UnsignedActivations(u) : parse.GetValue(unsigned),
                FloatOutlierThreshold = outlierThreshold,
            };
            _ = new LinearSelection(parse.GetValue(exclude)); // a bad pattern is a usage error before anything else

            var smoothing = noSmoothing ? null : new SmoothQuantOptions
            {
                Alpha = fixedAlpha,
                InsertMul = parse.GetValue(insertMul) ?? quantize,
                Scope = parse.GetValue(scope),
            };
            if (parse.GetValue(embeddingBits) is { } eb && eb is not (4 or 8))
                throw new OnnxQuantException(null, $"--quantize-embeddings must be 4 or 8 (got {eb.ToString(CultureInfo.InvariantCulture)})", ExitCode.Usage);
            var recipe = RecipePresets.Smooth(parse.GetValue(exclude) ?? [], parse.GetValue(lmHead), smoothing, quantize ? w8a8 : null,
                calibrationArguments.Settings(parse), verification.Settings(parse), gates.Bounds(parse),
                RecipePresets.Embeddings(parse.GetValue(embeddingBits), lmHeadBits: null));
            if (parse.GetValue(printRecipe))
            {
                context.Out.WriteLine(RecipeWriter.Format(recipe));
                return (int)ExitCode.Ok;
            }
            // Last before the work: for a GenAI folder this creates the output folder.
            var (modelPath, outPath, genai) = GenAiOutput.Resolve(modelArgument, parse.GetValue(output), quantize ? "sq" : "smoothed", m => DefaultOutput(m, quantize));
            if (Path.GetFullPath(outPath) == Path.GetFullPath(modelPath))
                throw new OnnxQuantException(outPath, "is the input model; write the result to another file", ExitCode.Usage);
            var job = new QuantizeJob(modelPath, outPath, recipe, session,
                quantize ? $"smoothing (alpha {alphaText}) and rewriting to W8A8 {w8a8.Format.ToString().ToLowerInvariant()}" : $"smoothing (alpha {alphaText})",
                EvalCommand.AtLeast(parse.GetValue(verification.Latency), 0, "--latency"), 20)
                { Target = chosenTarget, GenAi = genai, Sessions = CalibrationArguments.SessionsOf(parse, calibrationArguments.WholeGraph, calibrationArguments.BlockSessions) };
            var outcome = QuantizeCommand.Run(context, job);

            var summary = SmoothSummary.Create(modelPath, outPath, quantize ? w8a8 : null, alphaText, outcome);
            if (parse.GetValue(json))
                JsonOutput.Write(context.Out, summary);
            else
                SmoothSummary.Print(context.CreateConsole(), summary);
            return GateArguments.Verdict(context, outcome.Gates, outPath);
        }));
        return command;
    }

    /// <summary>Beside the input: model.onnx -> model.sq.onnx (quantized) or model.smoothed.onnx.</summary>
    public static string DefaultOutput(string modelPath, bool quantize)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".";
        return Path.Combine(folder, Path.GetFileNameWithoutExtension(modelPath) + (quantize ? ".sq.onnx" : ".smoothed.onnx"));
    }

    // The float channels are emitted beside a static int8 product only (int8, qlinear), and chosen by the smoothing pass.
    private static void CheckFloatOutliers(float? threshold, W8A8Format format, bool quantize, bool noSmoothing)
    {
        if (threshold is not { } t)
            return;
        if (!float.IsFinite(t) || t <= 0)
            throw new OnnxQuantException(null, $"--float-outliers must be a positive threshold on max |x| (got {t.ToString(CultureInfo.InvariantCulture)}); bitsandbytes uses 6.0", ExitCode.Usage);
        if (!quantize)
            throw new OnnxQuantException(null, "--float-outliers chooses channels of the W8A8 graph; drop --no-quantize or the option", ExitCode.Usage);
        if (format is not (W8A8Format.Int8 or W8A8Format.QLinear))
            throw new OnnxQuantException(null, $"--float-outliers needs --format int8 or qlinear (float channels beside a static int8 product); --format {format.ToString().ToLowerInvariant()} has none", ExitCode.Usage);
        if (noSmoothing)
            throw new OnnxQuantException(null, "--float-outliers is applied by the smoothing pass; use --alpha auto or a fixed alpha instead of --alpha none", ExitCode.Usage);
    }

    private static float? ParseAlpha(string text)
    {
        if (text.Equals("auto", StringComparison.OrdinalIgnoreCase))
            return null;
        if (float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float value) && value >= 0 && value <= 1)
            return value;
        throw new OnnxQuantException(null, $"--alpha must be 'auto', 'none' or a number between 0 and 1 (got '{text}')", ExitCode.Usage);
    }
}

using System.CommandLine;
using System.Globalization;
using OnnxQuant.Calibrate;
using OnnxQuant.Analysis;
using OnnxQuant.Awq;
using OnnxQuant.Calibrate.BlockEvaluation;
using OnnxQuant.Calibrate.Data;
using OnnxQuant.Calibrate.Sessions;
using OnnxQuant.Calibrate.Verification;
using OnnxQuant.Gptq;
using OnnxQuant.Passes;
using OnnxQuant.Placement;
using OnnxQuant.Quantization;
using OnnxQuant.Recipes;

namespace OnnxQuant.Cli;

/// <summary>Which weights the 4-bit rewrite gets.</summary>
public enum AwqMethod
{
    /// <summary>Activation-aware scales (and optional clipping) searched on calibration data, then round-to-nearest.</summary>
    Awq,
    /// <summary>Plain round-to-nearest: no calibration.</summary>
    Rtn,
    /// <summary>GPTQ rounding from the calibration rows' H = XᵀX, no scaling.</summary>
    Gptq,
    /// <summary>AWQ's scales (and clipping) folded first, then GPTQ rounding of the scaled weights.</summary>
    AwqGptq,
}

/// <summary>The --method words.</summary>
public static class AwqMethods
{
    public static readonly string[] Words = ["awq", "rtn", "gptq", "awq-gptq"];

    // --method accepts only Words, so any other word here is a bug, not a user's typo turned into AWQ.
    public static AwqMethod Parse(string word) => word switch
    {
        "awq" => AwqMethod.Awq,
        "rtn" => AwqMethod.Rtn,
        "gptq" => AwqMethod.Gptq,
        "awq-gptq" => AwqMethod.AwqGptq,
        _ => throw new ArgumentOutOfRangeException(nameof(word), word, $"not one of {string.Join(", ", Words)}"),
    };

    public static string Word(this AwqMethod method) => method switch
    {
        AwqMethod.Rtn => "rtn",
        AwqMethod.Gptq => "gptq",
        AwqMethod.AwqGptq => "awq-gptq",
        _ => "awq",
    };

    public static bool SearchesScales(this AwqMethod method) => method is AwqMethod.Awq or AwqMethod.AwqGptq;

    public static bool UsesGptq(this AwqMethod method) => method is AwqMethod.Gptq or AwqMethod.AwqGptq;
}

/// <summary>
/// `onnxquant awq model.onnx [--data ...] [-o out.onnx] [--method awq|rtn|gptq|awq-gptq] [--group-size N] [--symmetric]
/// [--bits-budget B | --max-size MB] ...`: calibrate (unless --stats or rtn), search AWQ scales, plan bits per linear,
/// rewrite linears to MatMulNBits (RTN or GPTQ rounding), write, verify on held-out text.
/// </summary>
public static class AwqCommand
{
    public static Command Create(CliContext context)
    {
        var model = new Argument<string>("model") { Description = "The ONNX model file, or an ONNX Runtime GenAI model folder (then the output is a folder too)." };
        var calibrationArguments = new CalibrationArguments();
        var verification = new VerificationArguments();
        var output = new Option<string?>("--output", "-o") { Description = "The quantized model to write (default: <model>.awq.onnx or <model>.rtn.onnx)." };
        var method = new Option<string>("--method")
        {
            Description = "awq (default) searches per-group scales on calibration data; rtn is plain round-to-nearest; gptq rounds with GPTQ "
                + "(errors compensated through the calibration rows' XᵀX); awq-gptq folds AWQ's scales, then rounds with GPTQ (the default with --bits-budget or --max-size).",
            DefaultValueFactory = _ => "awq",
        };
        method.AcceptOnlyFromAmong(AwqMethods.Words);
        var actOrder = new Option<bool>("--act-order") { Description = "GPTQ: round inputs in order of decreasing activation energy, static groups keep the block layout (the default; accepted so scripts can say so)." };
        var noActOrder = new Option<bool>("--no-act-order") { Description = "GPTQ: round inputs in their own order, each group's grid fitted on the weights as updated so far." };
        var damp = new Option<string>("--damp") { Description = "GPTQ: dampening added to XᵀX's diagonal, as a fraction of its mean (0 < d <= 1), or auto: per linear, whichever of 0.01, 0.03 and 0.1 rounds with the least error on held-out calibration rows (the default with --bits-budget or --max-size).", DefaultValueFactory = _ => DefaultDamp };
        var bitsBudget = new Option<double?>("--bits-budget") { Description = "Mixed precision: average bits per weight of the quantized linears (B, scales and zero points as emitted); each linear gets 4, 8 or float bits by its measured output error." };
        var maxSize = new Option<double?>("--max-size") { Description = "Mixed precision: the emitted model's initializers at most this many MB (1 MB = 1,048,576 bytes); linears get 4, 8 or float bits by measured error." };
        var sensitivity = new Option<string>("--sensitivity")
        {
            Description = "Mixed precision: rank linears by their own output error on held-out rows (linear; any size) or by the model's "
                + "output error with each linear alone rounded (model: one ONNX Runtime session over the whole model, one run per choice of each linear); "
                + "auto (the default) takes model where that is affordable for the model's size.",
            DefaultValueFactory = _ => "auto",
        };
        sensitivity.AcceptOnlyFromAmong(RecipeFile.SensitivityNames);
        var groupSize = new Option<int>("--group-size") { Description = "Weights per 4-bit block along K: 32, 64, 128 or 256.", DefaultValueFactory = _ => 128 };
        var symmetric = new Option<bool>("--symmetric") { Description = "Symmetric blocks (implicit zero point 8) instead of asymmetric with zero points (the default with --target cpu)." };
        var asymmetric = new Option<bool>("--asymmetric") { Description = "Asymmetric blocks with zero points (the default, except with --target cpu)." };
        var accuracy = new Option<int>("--accuracy-level") { Description = "MatMulNBits accuracy_level: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 compute. Default: 4 with --target cpu (its fast kernels), else 0.", DefaultValueFactory = _ => 0 };
        var lmHead = new Option<bool>("--include-lm-head") { Description = "Quantize the output projection (lm_head) too, round-to-nearest at --lm-head-bits." };
        var lmHeadBits = new Option<int>("--lm-head-bits") { Description = "Bits of the LM head with --include-lm-head: 8 (default; a 4-bit head is the usual cause of a model repeating itself) or 4. MatMulNBits either way.", DefaultValueFactory = _ => 8 };
        var embeddingBits = new Option<int?>("--quantize-embeddings") { Description = "Store the token embedding as 4- or 8-bit blocks (com.microsoft GatherBlockQuantized); a tied LM head at the same bits shares them." };
        var exclude = new Option<string[]>("--exclude") { Description = "Keep linears in floating point whose node name, or path as inspect prints it, matches: a glob (*, ?) or /regex/; one per --exclude, repeat it for several." };
        var noClip = new Option<bool>("--no-clip") { Description = "Skip AWQ's per-block clip search (on by default: it lowered held-out error on MiniLM and tiny-llama)." };
        var clip = new Option<bool>("--clip") { Description = "Run the clip search (the default without --bits-budget / --max-size; with them it clamps weights the plan may lift to 8 bits or float)." };
        var duo = new Option<bool>("--duo-scaling") { Description = "Use duo scaling (the default; accepted so scripts can say so)." };
        var noDuo = new Option<bool>("--no-duo-scaling") { Description = "Search s = mean|x|^r (the original AWQ) instead of mean|x|^r / mean|w|^(1-r) (AutoAWQ's duo scaling, the default)." };
        var blockLoss = new Option<bool>("--block-loss") { Description = "Score scales by the output of the attention/MLP block a group feeds (runs it in ONNX Runtime) instead of the group's own outputs." };
        var grid = new Option<int>("--grid") { Description = "Grid points for the scale exponent r in [0, 1).", DefaultValueFactory = _ => 20 };
        var target = TargetOption.Create();
        var runtime = new SessionArguments();
        var json = CliContext.JsonOption();
        var gates = new GateArguments();
        var printRecipe = new Option<bool>("--print-recipe") { Description = "Print the recipe this command line amounts to (docs/recipes.md) and stop; `onnxquant run` on it writes the same model." };
        var command = new Command("awq", "Quantize weights to 4 bits (MatMulNBits, W4A16) with activation-aware scaling (AWQ) or round-to-nearest.")
        {
            model, output, method, groupSize, symmetric, asymmetric, accuracy, lmHead, lmHeadBits, embeddingBits, exclude, clip, noClip, duo, noDuo, blockLoss, grid,
            actOrder, noActOrder, damp, bitsBudget, maxSize, sensitivity, target, runtime.Device, runtime.Threads, json,
        };
        foreach (var option in calibrationArguments.All.Concat(verification.All).Concat(gates.All).Append(printRecipe))
            command.Options.Add(option);
        command.SetAction(parse => CommandRunner.Run(context, parse, () =>
        {
            string modelArgument = parse.GetValue(model)!;
            var budget = Budget(parse.GetValue(bitsBudget), parse.GetValue(maxSize));
            var how = DefaultMethod(ContextLengths.Explicit(parse, method) ? parse.GetValue(method) : null, budget);
            int block = parse.GetValue(groupSize);
            if (!Int4QuantOptions.LinearBlockSizes.Contains(block))
                throw new OnnxQuantException(null, $"--group-size must be {Int4QuantOptions.LinearBlockSizeWords} (got {block.ToString(CultureInfo.InvariantCulture)})", ExitCode.Usage);
            var deployment = parse.GetValue(target);
            if (DeploymentTargets.W4BlockProblem(deployment, block) is { } blockProblem)
                throw new OnnxQuantException(null, $"--target {TargetOption.Word(deployment!.Value)} with --group-size {block}: {blockProblem}; give --group-size 128 or less", ExitCode.Usage);
            int level = ContextLengths.Explicit(parse, accuracy) ? parse.GetValue(accuracy) : DeploymentTargets.W4AccuracyLevel(deployment);
            if (parse.GetValue(symmetric) && parse.GetValue(asymmetric))
                throw new OnnxQuantException(null, "--symmetric and --asymmetric contradict each other; give one", ExitCode.Usage);
            bool symmetricBlocks = parse.GetValue(symmetric) || (!parse.GetValue(asymmetric) && DeploymentTargets.W4Symmetric(deployment));
            if (level is < 0 or > 4)
                throw new OnnxQuantException(null, $"--accuracy-level must be 0..4 (got {level.ToString(CultureInfo.InvariantCulture)})", ExitCode.Usage);
            if (parse.GetValue(clip) && parse.GetValue(noClip))
                throw new OnnxQuantException(null, "--clip and --no-clip contradict each other; give one", ExitCode.Usage);
            if (parse.GetValue(duo) && parse.GetValue(noDuo))
                throw new OnnxQuantException(null, "--duo-scaling and --no-duo-scaling contradict each other; give one", ExitCode.Usage);
            int gridPoints = parse.GetValue(grid);
            if (gridPoints is < 1 or > 1000)
                throw new OnnxQuantException(null, $"--grid must be 1..1000 (got {gridPoints.ToString(CultureInfo.InvariantCulture)})", ExitCode.Usage);
            if (parse.GetValue(blockLoss) && (parse.GetValue(calibrationArguments.Data) ?? []).Any(CalibrationData.IsArrays))
                throw new OnnxQuantException(null, "--block-loss runs the blocks on token windows; with arrays (.npz) as --data, leave it off", ExitCode.Usage);
            var (dampening, autoDamp) = ParseDamp(ContextLengths.Explicit(parse, damp) ? parse.GetValue(damp) ?? DefaultDamp : DampFor(budget));
            if (parse.GetValue(actOrder) && parse.GetValue(noActOrder))
                throw new OnnxQuantException(null, "--act-order and --no-act-order contradict each other; give one", ExitCode.Usage);
            if ((parse.GetValue(actOrder) || parse.GetValue(noActOrder)) && !how.UsesGptq())
                throw new OnnxQuantException(null, "--act-order and --no-act-order are GPTQ options; give --method gptq or awq-gptq with them", ExitCode.Usage);
            if (ContextLengths.Explicit(parse, damp) && !how.UsesGptq())
                throw new OnnxQuantException(null, "--damp is a GPTQ option; give --method gptq or awq-gptq with it", ExitCode.Usage);
            var ranking = RecipeFile.ParseSensitivity(parse.GetValue(sensitivity) ?? "auto");
            if (ContextLengths.Explicit(parse, sensitivity) && budget is null)
                throw new OnnxQuantException(null, "--sensitivity chooses how mixed precision ranks linears; give --bits-budget or --max-size with it", ExitCode.Usage);
            var session = runtime.Settings(parse, context);
            int headBits = parse.GetValue(lmHeadBits);
            if (headBits is not (4 or 8))
                throw new OnnxQuantException(null, $"--lm-head-bits must be 4 or 8 (got {headBits.ToString(CultureInfo.InvariantCulture)})", ExitCode.Usage);
            if (parse.GetValue(embeddingBits) is { } eb && eb is not (4 or 8))
                throw new OnnxQuantException(null, $"--quantize-embeddings must be 4 or 8 (got {eb.ToString(CultureInfo.InvariantCulture)})", ExitCode.Usage);
            _ = new LinearSelection(parse.GetValue(exclude)); // a bad pattern is a usage error before anything else
            var quant = new Int4QuantOptions { BlockSize = block, Scheme = symmetricBlocks ? Int4Scheme.Symmetric : Int4Scheme.Asymmetric };

            var rewrite = new W4RewriteOptions
            {
                Quantization = quant, AccuracyLevel = level,
                Rounding = how.UsesGptq() ? WeightRounding.Gptq : WeightRounding.Rtn,
                // Without GPTQ the settings stay at their defaults: the recipe writes them only for GPTQ rounding.
                Gptq = how.UsesGptq() ? new GptqOptions { Dampening = (float)dampening, AutoDampening = autoDamp, ActOrder = !parse.GetValue(noActOrder) } : new GptqOptions(),
            };
            var search = how.SearchesScales() ? new AwqPassOptions
            {
                Search = new AwqOptions { Quantization = quant, GridPoints = gridPoints, Clip = ClipSearch(parse.GetValue(clip), parse.GetValue(noClip), budget), DuoScaling = !parse.GetValue(noDuo) },
                BlockLoss = parse.GetValue(blockLoss),
            } : null;
            // GPTQ and a bits budget calibrate with more rows (the recipe's calibration.sampleRows; Recipe.SampleRows).
            // An included head gets its own bits in the embeddings pass (8 by default), not the linears' 4.
            bool includeHead = parse.GetValue(lmHead);
            var tables = RecipePresets.Embeddings(parse.GetValue(embeddingBits), includeHead ? headBits : null, block, quant.Scheme == Int4Scheme.Symmetric, level);
            var recipe = RecipePresets.Awq(parse.GetValue(exclude) ?? [], includeHead, rewrite, search, budget, ranking,
                calibrationArguments.Settings(parse), verification.Settings(parse), gates.Bounds(parse), tables);
            if (parse.GetValue(printRecipe))
            {
                context.Out.WriteLine(RecipeWriter.Format(recipe));
                return (int)ExitCode.Ok;
            }
            // Last before the work: for a GenAI folder this creates the output folder.
            var (modelPath, outPath, genai) = GenAiOutput.Resolve(modelArgument, parse.GetValue(output), how.Word(), m => DefaultOutput(m, how));
            var job = new QuantizeJob(modelPath, outPath, recipe, session, StageLine(how, block, budget), EvalCommand.AtLeast(parse.GetValue(verification.Latency), 0, "--latency"), 10)
                { Target = deployment, GenAi = genai, Sessions = CalibrationArguments.SessionsOf(parse, calibrationArguments.WholeGraph, calibrationArguments.BlockSessions) };
            var outcome = QuantizeCommand.Run(context, job);
            var summary = AwqSummary.Create(modelPath, outPath, how, quant, level, OutputBytes(outPath), outcome, budget);
            if (parse.GetValue(json))
                JsonOutput.Write(context.Out, summary);
            else
                AwqSummary.Print(context.CreateConsole(), summary);
            return GateArguments.Verdict(context, outcome.Gates, outPath);
        }));
        return command;
    }

    /// <summary>
    /// The --method given, else AWQ; with a size budget AWQ-GPTQ, the most accurate rounding on every bench model, since
    /// a budget is asked for accuracy per byte and calibrates GPTQ's rows anyway.
    /// </summary>
    public static AwqMethod DefaultMethod(string? given, SizeBudget? budget) =>
        given is not null ? AwqMethods.Parse(given) : budget is null ? AwqMethod.Awq : AwqMethod.AwqGptq;

    private static string DefaultOutput(string modelPath, AwqMethod method)
    {
        string folder = Path.GetDirectoryName(modelPath) ?? "";
        return Path.Combine(folder, $"{Path.GetFileNameWithoutExtension(modelPath)}.{method.Word()}.onnx");
    }

    // The clip search clamps each weight for the rewrite's 4-bit blocks; a bits plan may then give the linear 8 bits,
    // float or smaller blocks, which keep the clamp and lose accuracy (MiniLM, 5-bit plan: 0.9901 held-out cosine
    // without it, 0.9883 with it). So with a budget it runs only when asked for.
    private static bool ClipSearch(bool clip, bool noClip, SizeBudget? budget) => clip || (!noClip && budget is null);

    // With a size budget, auto: a budget asks for accuracy per byte, and auto's held-out choice is the more accurate (its cost is GPTQ's x4).
    private static string DampFor(SizeBudget? budget) => budget is null ? DefaultDamp : "auto";

    private static string DefaultDamp => new GptqOptions().AutoDampening ? "auto" : new GptqOptions().Dampening.ToString(CultureInfo.InvariantCulture);

    private static (double Fraction, bool Auto) ParseDamp(string text)
    {
        if (text == "auto")
            return (new GptqOptions().Dampening, true);
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && d > 0 && d <= 1)
            return (d, false);
        throw new OnnxQuantException(null, $"--damp must be auto or a fraction in (0, 1] (got {text})", ExitCode.Usage);
    }

    private static SizeBudget? Budget(double? bits, double? maxMb)
    {
        if (bits is not null && maxMb is not null)
            throw new OnnxQuantException(null, "--bits-budget and --max-size both set the size; give one", ExitCode.Usage);
        if (bits is { } b && !(b > 0 && b <= 32))
            throw new OnnxQuantException(null, $"--bits-budget must be an average in (0, 32] bits per weight (got {b.ToString(CultureInfo.InvariantCulture)})", ExitCode.Usage);
        if (maxMb is { } m && !(m > 0 && m < 1e9))
            throw new OnnxQuantException(null, $"--max-size must be a positive size in MB (got {m.ToString(CultureInfo.InvariantCulture)})", ExitCode.Usage);
        return bits is { } avg ? new SizeBudget.AverageBits(avg)
            : maxMb is { } mb ? new SizeBudget.MaxBytes((long)Math.Floor(mb * SizeBudget.BytesPerMb))
            : null;
    }

    private static string StageLine(AwqMethod how, int block, SizeBudget? budget)
    {
        string rounding = how.UsesGptq() ? "GPTQ rounding" : "round-to-nearest";
        string bits = budget is null ? "4-bit MatMulNBits" : "MatMulNBits at 4 or 8 bits (or float) by measured error within the size budget";
        return how.SearchesScales()
            ? $"searching AWQ scales and rewriting to {bits}, {rounding} (blocks of {block})"
            : $"rewriting to {bits}, {rounding} (blocks of {block})";
    }

    private static long OutputBytes(string path)
    {
        long bytes = new FileInfo(path).Length;
        string data = path + ".data";
        return bytes + (File.Exists(data) ? new FileInfo(data).Length : 0);
    }
}

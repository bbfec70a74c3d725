using System.Globalization;
using System.Numerics.Tensors;
using OnnxQuant.Analysis;
using OnnxQuant.Gptq;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Numerics;
using OnnxQuant.Quantization;
using OnnxQuant.Statistics;

namespace OnnxQuant.Passes;

/// <summary>The size limit mixed precision plans under.</summary>
public abstract record SizeBudget
{
    /// <summary>Average bits per weight of the planned linears (their emitted weight bytes x 8 / their K·N).</summary>
    public sealed record AverageBits(double Bits) : SizeBudget;

    /// <summary>All initializer bytes of the emitted model (weights as emitted plus every other constant).</summary>
    public sealed record MaxBytes(long Bytes) : SizeBudget;

    /// <summary>--max-size and a recipe's maxSizeMb count MB of 1,048,576 bytes.</summary>
    public const double BytesPerMb = 1048576;
}

/// <summary>Settings of <see cref="MixedPrecisionPass"/>; rounding, grid and selection are the rewrite's.</summary>
public sealed record MixedPrecisionOptions(SizeBudget Budget, W4RewriteOptions Rewrite)
{
    /// <summary>What the errors the plan compares are measured on (docs/architecture.md, "Mixed precision").</summary>
    public BitsSensitivity Sensitivity { get; init; } = BitsSensitivity.LinearOutput;
}

/// <summary>
/// Mixed precision by measured sensitivity: for every linear the rewrite would quantize, the relative output error
/// ‖X (W - Ŵ)‖² / ‖X W‖² on held-out calibration rows (every fourth recorded row, which GPTQ's H then leaves out) at
/// 4 bits (the rewrite's blocks and <see cref="MixedPrecisionPass.FinerBlockSizes"/>) and 8 bits with the rewrite's rounding — or, with
/// <see cref="BitsSensitivity.ModelOutput"/>, the relative error of the model's output with that linear alone rounded
/// (<see cref="IOutputErrorProbe"/>) — and the bytes each choice emits; <see cref="BitsPlanner"/> picks the choices
/// under the budget and the plan is left for <see cref="W4RewritePass"/> (docs/architecture.md, "Mixed precision").
/// </summary>
public sealed class MixedPrecisionPass : IGraphPass
{
    private readonly MixedPrecisionOptions _options;

    public MixedPrecisionPass(MixedPrecisionOptions options)
    {
        if (options.Budget is SizeBudget.AverageBits { Bits: var b } && !(b > 0 && b <= 32))
            throw new ArgumentOutOfRangeException(nameof(options), b, "the average bits budget must be in (0, 32]");
        _options = options;
    }

    public string Name => "bits-plan";

    public PassResult Run(OnnxModel model, PassContext context)
    {
        var graph = model.Graph;
        var stats = context.Analyses.Get<CalibrationStats>(Name);
        var rewrite = _options.Rewrite;
        var fit = new LinearRounder(rewrite.Rounding, rewrite.Gptq, stats, context.Analyses.Find<InputRescaling>(), RowSplit.Fit);
        var candidates = LinearAnalysis.ClassifyGraph(graph, null, rewrite.Selection).Where(c => c.Quantizable).ToList();
        var choices = new List<LinearChoices>();
        long floatBytesOfPlanned = 0;
        var linears = candidates.Select(c => c.RequireLinear(graph)).ToList();
        using var probe = _options.Sensitivity == BitsSensitivity.ModelOutput
            ? context.Analyses.Get<IOutputErrorProbe>(Name).Open(model, linears)
            : null;
        for (int i = 0; i < candidates.Count; i++)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            context.Progress?.Report(new PassProgress(Name, i, candidates.Count, candidates[i].Name));
            var choice = Measure(graph, linears[i], fit, probe);
            floatBytesOfPlanned += choice.BytesFloat;
            choices.Add(choice);
        }
        context.Progress?.Report(new PassProgress(Name, candidates.Count, candidates.Count));

        long parameters = choices.Sum(c => (long)c.K * c.N);
        long minimum = choices.Sum(c => c.Bytes4);
        long budget = _options.Budget switch
        {
            SizeBudget.AverageBits a => (long)Math.Floor(a.Bits * parameters / 8),
            SizeBudget.MaxBytes m => m.Bytes - (graph.Initializers.Values.Sum(t => t.ByteLength) - floatBytesOfPlanned),
            _ => throw new ArgumentOutOfRangeException(nameof(_options)),
        };
        if (budget < minimum)
            throw new OnnxQuantException(null, _options.Budget switch
            {
                // The same pass runs for `awq` and for a recipe: name both spellings of the setting.
                SizeBudget.AverageBits a => $"--bits-budget {a.Bits.ToString("0.###", CultureInfo.InvariantCulture)} (a recipe's bitsBudget) is below what every linear takes at 4 bits "
                    + $"({(8.0 * minimum / parameters).ToString("0.###", CultureInfo.InvariantCulture)} average bits with blocks of {rewrite.Quantization.BlockSize}); give at least that, "
                    + "or larger blocks (--group-size, a recipe's blockSize)",
                _ => $"--max-size (a recipe's maxSizeMb) leaves {Math.Max(0, budget)} bytes for the linears' weights but 4 bits take {minimum}; give a larger size "
                    + $"(at least {(Math.Ceiling(((_options.Budget as SizeBudget.MaxBytes)!.Bytes - budget + minimum) / SizeBudget.BytesPerMb * 100) / 100).ToString("0.00", CultureInfo.InvariantCulture)} MB of 1,048,576 bytes)",
            }, ExitCode.Usage);
        var plan = BitsPlanner.Assign(choices, budget);
        context.Analyses.Set(plan);
        var rows = choices.Select(c => Row(plan, c)).ToList();
        return new PassResult(false, rows)
        {
            Metrics = new Dictionary<string, double>
            {
                ["planned_linears"] = choices.Count,
                ["budget_bytes"] = budget,
                ["planned_bytes"] = plan.PlannedBytes,
                ["average_bits"] = plan.AverageBits,
                ["eight_bit_linears"] = plan.Bits.Values.Count(b => b == 8),
                ["float_linears"] = plan.Bits.Values.Count(b => b == BitsPlan.Float),
                ["finer_block_linears"] = plan.BlockSizes.Count,
                ["model_output_sensitivity"] = probe is null ? 0 : 1,
            },
        };
    }

    private LinearChoices Measure(Graph graph, LinearNode linear, LinearRounder fit, IOutputErrorSession? probe)
    {
        var options = _options.Rewrite.Quantization with { ScaleType = linear.WeightType };
        int scaleBytes = ElementType.SizeOf(linear.WeightType);
        long bytes4 = BitsPlanner.QuantizedBytes(linear.K, linear.N, 4, options, scaleBytes);
        long bytes8 = BitsPlanner.QuantizedBytes(linear.K, linear.N, 8, options, scaleBytes);
        long bytesFloat = graph.GetConstant(linear.WeightName)?.ByteLength ?? (long)linear.K * linear.N * scaleBytes;
        var weight = linear.ReadWeightKN(graph);
        var finer = FinerBlockSizes(options.BlockSize);
        Func<int, Int4QuantOptions, double> error;
        if (probe is not null)
            // The rounding is the rewrite's (fitted on the same rows); only where its error is measured changes.
            error = (bits, o) => probe.RelativeError(linear, fit.Quantize(linear, weight, bits, o, out _).Dequantize());
        else
        {
            var heldOut = fit.InputRows(linear, RowSplit.HeldOut, out int count);
            if (heldOut is null)
                // Nothing to measure on: no error to save, so the planner leaves it at 4 bits.
                return new LinearChoices(linear.Name, linear.K, linear.N, 0, 0, bytes4, bytes8, bytesFloat);
            var x = MatrixView.Of(heldOut, count, linear.K);
            double reference = TensorPrimitives.SumOfSquares(MatrixMultiply.Multiply(x, MatrixView.Of(weight, linear.K, linear.N)));
            error = (bits, o) =>
            {
                var q = fit.Quantize(linear, weight, bits, o, out _).Dequantize();
                TensorPrimitives.Subtract(weight, q, q);
                double e = TensorPrimitives.SumOfSquares(MatrixMultiply.Multiply(x, MatrixView.Of(q, linear.K, linear.N)));
                return reference > 0 ? e / reference : e;
            };
        }
        return new LinearChoices(linear.Name, linear.K, linear.N, error(4, options), error(8, options), bytes4, bytes8, bytesFloat)
        {
            Finer = finer.Select(size =>
            {
                var smaller = options with { BlockSize = size };
                return new FinerBlocks(size, error(4, smaller), BitsPlanner.QuantizedBytes(linear.K, linear.N, 4, smaller, scaleBytes));
            }).ToList(),
        };
    }

    /// <summary>
    /// The smaller 4-bit block sizes a linear may get: half and a quarter of the rewrite's, down to 32 (what
    /// <c>--group-size</c> takes). Finer blocks cost a scale and a zero point per block; MiniLM's 5-bit plan gains from
    /// them (docs/architecture.md, "Mixed precision").
    /// </summary>
    public static IReadOnlyList<int> FinerBlockSizes(int blockSize) =>
        new[] { blockSize / 2, blockSize / 4 }.Where(b => b >= 32).ToList();

    private static PassReportRow Row(BitsPlan plan, LinearChoices c)
    {
        string F(double v) => v.ToString("g4", CultureInfo.InvariantCulture);
        int bits = plan.Bits[c.Linear];
        return new PassReportRow(c.Linear, new Dictionary<string, string>
        {
            ["shape"] = $"{c.K}x{c.N}",
            ["bits"] = bits == BitsPlan.Float ? "float" : bits.ToString(CultureInfo.InvariantCulture),
            ["block_size"] = plan.BlockSizeOf(c.Linear)?.ToString(CultureInfo.InvariantCulture) ?? "-",
            ["error_4"] = F(c.Error4),
            ["error_8"] = F(c.Error8),
            ["bytes"] = plan.BytesOf(c).ToString(CultureInfo.InvariantCulture),
        });
    }
}

using System.Globalization;
using System.Numerics.Tensors;
using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.Gptq;
using OnnxQuant.IO;
using OnnxQuant.IR;
using OnnxQuant.Quantization;
using OnnxQuant.Statistics;

namespace OnnxQuant.Passes;

/// <summary>Settings of <see cref="W4RewritePass"/>.</summary>
public sealed record W4RewriteOptions
{
    /// <summary>Block size and scheme; the scale storage type is taken from each weight (MatMulNBits stores scales in A's type).</summary>
    public Int4QuantOptions Quantization { get; init; } = new();

    /// <summary>MatMulNBits accuracy_level: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8 compute (a CPU speed-up).</summary>
    public int AccuracyLevel { get; init; }

    /// <summary>Which linears to quantize: by default all but the LM head (logits are the most sensitive), minus --exclude patterns.</summary>
    public LinearSelection Selection { get; init; } = new();

    /// <summary>Round to nearest, or GPTQ from the calibration rows (<see cref="CalibrationStats"/> in the pipeline's analyses).</summary>
    public WeightRounding Rounding { get; init; } = WeightRounding.Rtn;

    public GptqOptions Gptq { get; init; } = new();
}

/// <summary>
/// Replaces every constant-weight MatMul and Gemm (transA = 0) by com.microsoft MatMulNBits with 4-bit block weights
/// (docs/architecture.md, "MatMulNBits"): the logical [K, N] weight is quantized round-to-nearest, packed [N, k_blocks, block/2], scales
/// [N, k_blocks] in the weight's float type, packed zero points unless symmetric, and a MatMul's bias Add (or Gemm's C)
/// folded into input 5. Whatever chose the weights before (AWQ scaling and clipping) has already written them.
/// With <see cref="WeightRounding.Gptq"/> the codes come from GPTQ instead of RTN (same grid and layout); with a
/// <see cref="BitsPlan"/> in the analyses (mixed precision) a linear is written at 8 bits, at 4 bits with smaller blocks, or kept in float as planned.
/// </summary>
public sealed class W4RewritePass : IGraphPass
{
    public const int MicrosoftOpset = 1;

    private readonly W4RewriteOptions _options;

    public W4RewritePass(W4RewriteOptions options)
    {
        if (options.AccuracyLevel is < 0 or > 4)
            throw new ArgumentOutOfRangeException(nameof(options), options.AccuracyLevel, "MatMulNBits accuracy_level is 0..4");
        if (!Int4QuantOptions.IsValidBlockSize(options.Quantization.BlockSize))
            throw new ArgumentOutOfRangeException(nameof(options), options.Quantization.BlockSize, "the 4-bit block size must be a power of two from 16 to 256");
        _options = options;
    }

    public string Name => "w4-rewrite";

    public PassResult Run(OnnxModel model, PassContext context)
    {
        var decisions = new List<W4Decision>();
        var plan = context.Analyses.Find<BitsPlan>();
        var stats = _options.Rounding == WeightRounding.Gptq ? context.Analyses.Get<CalibrationStats>(Name) : null;
        var rounder = new LinearRounder(_options.Rounding, _options.Gptq, stats, context.Analyses.Find<InputRescaling>(), plan is null ? RowSplit.All : RowSplit.Fit);
        bool changed = SubgraphBodies.RewriteAll(model.Graph, null, (graph, scope) => RewriteGraph(graph, scope, decisions, context, rounder, plan));
        context.Analyses.Set(new W4Report(decisions));
        var rows = decisions.Select(Row).ToList();
        if (!changed)
            return PassResult.Unchanged with { Rows = rows };
        model.EnsureOpset(Nodes.MicrosoftDomain, MicrosoftOpset);
        return new PassResult(true, rows)
        {
            Metrics = new Dictionary<string, double>
            {
                ["quantized_linears"] = decisions.Count(d => d.Quantized),
                ["weight_bytes_before"] = decisions.Sum(d => d.BytesBefore),
                ["weight_bytes_after"] = decisions.Sum(d => d.BytesAfter),
                ["gptq_seconds"] = rounder.GptqSeconds,
                ["gptq_linears"] = decisions.Count(d => d.Rounding == WeightRounding.Gptq),
                ["eight_bit_linears"] = decisions.Count(d => d.Bits == 8),
            },
        };
    }

    private bool RewriteGraph(Graph graph, string? scope, List<W4Decision> decisions, PassContext context, LinearRounder rounder, BitsPlan? plan)
    {
        var candidates = LinearAnalysis.ClassifyGraph(graph, scope, _options.Selection);
        if (scope is null)
            KeptWeightCopies.Start(graph, context, candidates);
        var removedValues = new HashSet<string>(StringComparer.Ordinal);
        int done = 0, rewritten = 0;
        foreach (var candidate in candidates)
        {
            context.Cancellation.ThrowIfCancellationRequested();
            context.Progress?.Report(new PassProgress(Name, done++, candidates.Count, candidate.Name));
            if (!candidate.Quantizable)
            {
                decisions.Add(new W4Decision(candidate.Name, scope, candidate.K, candidate.N, candidate.Reason, candidate.Detail, null, 0, 0));
                continue;
            }
            var linear = candidate.RequireLinear(graph);
            int bits = plan?.BitsOf(linear.Name) ?? 4;
            if (bits == BitsPlan.Float)
            {
                long floatBytes = graph.GetConstant(linear.WeightName)?.ByteLength ?? 0;
                decisions.Add(new W4Decision(candidate.Name, scope, candidate.K, candidate.N, KeepReason.BitsBudget, null, null, floatBytes, floatBytes) { Bits = BitsPlan.Float });
                continue;
            }
            decisions.Add(Rewrite(graph, linear, scope, removedValues, rounder, bits, plan?.BlockSizeOf(linear.Name) ?? _options.Quantization.BlockSize));
            rewritten++;
        }
        if (scope is null)
            context.Progress?.Report(new PassProgress(Name, candidates.Count, candidates.Count));
        if (rewritten == 0)
            return false;
        graph.ValueInfo.RemoveAll(v => removedValues.Contains(v.Name));
        graph.RemoveDeadNodes();
        graph.SortTopologically();
        return true;
    }

    private W4Decision Rewrite(Graph graph, LinearNode linear, string? scope, HashSet<string> removedValues, LinearRounder rounder, int bits, int blockSize)
    {
        var type = linear.WeightType;
        var options = _options.Quantization with { ScaleType = type, BlockSize = blockSize };
        var bias = linear.ReadBias(graph);
        // Plain 4-bit round-to-nearest streams the weight band by band (Int4PackedQuantizer: the same codes as
        // Int4BlockQuantizer, bit for bit); GPTQ and 8-bit blocks need the whole weight and take the array path.
        MatMulNBitsWeights packed;
        double relativeError;
        bool usedGptq = false;
        if (bits == 4 && _options.Rounding == WeightRounding.Rtn)
        {
            var streamed = Int4PackedQuantizer.Quantize(LinearWeightTiles.Of(graph, linear), linear.K, linear.N, options);
            packed = MatMulNBitsPacker.Pack(streamed, FreeBaseName(graph, linear.WeightName), type, bias, _options.AccuracyLevel);
            relativeError = streamed.RelativeError;
        }
        else
        {
            var weight = linear.ReadWeightKN(graph);
            var quantized = rounder.Quantize(linear, weight, bits, options, out usedGptq);
            packed = MatMulNBitsPacker.Pack(quantized, FreeBaseName(graph, linear.WeightName), type, bias, _options.AccuracyLevel);
            relativeError = RelativeError(weight, quantized);
        }
        foreach (var t in packed.Initializers)
        {
            graph.UniqueValueName(t.Name); // reserves the (free) name
            graph.SetInitializer(t);
        }

        string output = linear.Output;
        var node = MatMulNBitsPacker.BuildNode(packed, linear.Activation, output, linear.Name);
        node.DocString = new Provenance("w4-matmulnbits", ProvenanceRole.Linear, [linear.Name]).Format();
        if (linear.Bias?.AddNode is { } add)
        {
            graph.RemoveNode(add);
            removedValues.Add(linear.Node.Output[0]);
        }
        graph.ReplaceNode(linear.Node, node);

        long before = graph.GetConstant(linear.WeightName)?.ByteLength ?? 0;
        long after = packed.WeightBytes;
        return new W4Decision(linear.Name, scope, linear.K, linear.N, KeepReason.None, null, relativeError, before, after)
        {
            Bits = bits,
            BlockSize = blockSize,
            Rounding = usedGptq ? WeightRounding.Gptq : WeightRounding.Rtn,
            Dampening = usedGptq ? rounder.DampeningOf(linear.Name) : null,
        };
    }

    // The packer derives its tensors' names from the base name; pick one for which none of them is taken yet.
    private static string FreeBaseName(Graph graph, string weightName)
    {
        string[] suffixes = ["_Q4", "_Q8", "_scales", "_zero_points", "_bias"];
        for (int i = 0; ; i++)
        {
            string candidate = i == 0 ? weightName : $"{weightName}_{i}";
            if (suffixes.All(s => graph.GetInitializer(candidate + s) is null && graph.Producer(candidate + s) is null && !graph.IsGraphInput(candidate + s)))
                return candidate;
        }
    }

    // ||W - dequant(Q)|| / ||W|| row by row, without materialising the dequantized weight: for a 7B MLP weight that and
    // the difference would be two more fp32 copies (360 MB) on top of the weight being quantized.
    private static double RelativeError(float[] weight, QuantizedBlocks q)
    {
        int k = q.K, n = q.N, kBlocks = q.KBlocks, bs = q.BlockSize;
        var errors = new double[k];
        var norms = new double[k];
        Parallel.For(0, k, row =>
        {
            int b = row / bs, i = row % bs;
            var src = weight.AsSpan(row * n, n);
            double error = 0, norm = 0;
            for (int col = 0; col < n; col++)
            {
                int block = col * kBlocks + b;
                float w = src[col];
                float d = w - (q.Codes[block * bs + i] - q.ZeroPoints[block]) * q.Scales[block];
                error += d * d;
                norm += w * w;
            }
            errors[row] = error;
            norms[row] = norm;
        });
        double e = 0, total = 0;
        for (int row = 0; row < k; row++)
        {
            e += errors[row];
            total += norms[row];
        }
        return total > 0 ? Math.Sqrt(e / total) : 0;
    }

    private static PassReportRow Row(W4Decision d)
    {
        var columns = new Dictionary<string, string>
        {
            ["shape"] = $"{d.K}x{d.N}",
            ["status"] = d.Quantized ? (d.Bits == 8 ? "MatMulNBits 8-bit" : "MatMulNBits") : "kept: " + (d.Detail is null ? KeepReasons.Describe(d.Reason) : $"{KeepReasons.Describe(d.Reason)}: {d.Detail}"),
        };
        if (d.WeightError is { } e)
        {
            columns["weight_rel_error"] = e.ToString("0.0000", CultureInfo.InvariantCulture);
            columns["bytes_before"] = d.BytesBefore.ToString(CultureInfo.InvariantCulture);
            columns["bytes_after"] = d.BytesAfter.ToString(CultureInfo.InvariantCulture);
        }
        return new PassReportRow(d.Scope is null ? d.Linear : $"{d.Scope}/{d.Linear}", columns);
    }
}

/// <summary>What the 4-bit rewrite did with one MatMul/Gemm: quantized (<see cref="KeepReason.None"/>, with its weight error and bytes) or kept.</summary>
public sealed record W4Decision(string Linear, string? Scope, int K, int N, KeepReason Reason, string? Detail, double? WeightError, long BytesBefore, long BytesAfter)
{
    public bool Quantized => Reason == KeepReason.None;

    /// <summary>4 or 8 when quantized; <see cref="BitsPlan.Float"/> when mixed precision kept it in float; 0 when kept for another reason.</summary>
    public int Bits { get; init; }

    /// <summary>Its MatMulNBits block size along K when quantized (mixed precision may give it smaller blocks than the rewrite's); 0 when kept.</summary>
    public int BlockSize { get; init; }

    /// <summary>How its codes were rounded (GPTQ falls back to RTN for an input without calibration rows).</summary>
    public WeightRounding Rounding { get; init; }

    /// <summary>GPTQ's dampening fraction for it (the option's, or the one auto dampening chose); null when not GPTQ-rounded.</summary>
    public float? Dampening { get; init; }
}

/// <summary>The 4-bit rewrite's decision on every MatMul/Gemm of the model (left in the pipeline's <see cref="AnalysisStore"/>).</summary>
public sealed record W4Report(IReadOnlyList<W4Decision> Decisions);

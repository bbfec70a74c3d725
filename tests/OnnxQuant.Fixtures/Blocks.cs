using OnnxQuant.IR;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Fixtures;

/// <summary>
/// Subgraphs the three families share, written in plain ONNX ops the way exporters emit them: shape arithmetic,
/// masks, multi-head attention, decomposed norms. Node names are <c>{prefix}/{OpType}</c>, numbered when repeated.
/// </summary>
internal static class Blocks
{
    /// <summary>Dimension <paramref name="axis"/> of <paramref name="value"/> as an int64 scalar.</summary>
    public static string Dim(GraphBuilder g, string value, int axis, string prefix)
    {
        var shape = g.Op("Shape", $"{prefix}/Shape", new[] { value }, outputType: DataType.Int64)[0];
        var index = g.Int64Scalar($"{prefix}/Constant_{axis}", axis);
        return g.Op("Gather", $"{prefix}/Gather", new[] { shape, index }, attributes: n => n.With("axis", 0L), outputType: DataType.Int64)[0];
    }

    public static string Unsqueeze(GraphBuilder g, string value, long[] axes, string prefix)
    {
        var axesName = g.Int64s($"{prefix}/Unsqueeze_axes", axes);
        return g.Op("Unsqueeze", $"{prefix}/Unsqueeze", new[] { value, axesName }, outputType: g.TypeOf(value))[0];
    }

    /// <summary>
    /// bool [seq, total]: query i (at absolute position total - seq + i) may attend key j when j &lt;= that position.
    /// Built from the runtime lengths, so it works for any sequence and past length, including an empty past.
    /// </summary>
    public static string CausalMask(GraphBuilder g, string seqLen, string totalLen, string prefix)
    {
        var zero = g.Int64Scalar($"{prefix}/Constant_zero", 0);
        var one = g.Int64Scalar($"{prefix}/Constant_one", 1);
        var pastLen = g.Op("Sub", $"{prefix}/Sub", new[] { totalLen, seqLen }, outputType: DataType.Int64)[0];
        var queryPos = g.Op("Range", $"{prefix}/Range", new[] { pastLen, totalLen, one }, outputType: DataType.Int64)[0];
        var keyPos = g.Op("Range", $"{prefix}/Range", new[] { zero, totalLen, one }, outputType: DataType.Int64)[0];
        var keyRow = Unsqueeze(g, keyPos, new long[] { 0 }, prefix);
        var queryCol = Unsqueeze(g, queryPos, new long[] { 1 }, prefix);
        return g.Op("LessOrEqual", $"{prefix}/LessOrEqual", new[] { keyRow, queryCol }, outputType: DataType.Bool)[0];
    }

    /// <summary>bool [batch, 1, 1, total] from an int64 attention_mask [batch, total] (1 = attend, 0 = padding).</summary>
    public static string KeyMask(GraphBuilder g, string attentionMask, string prefix)
    {
        var asBool = g.Cast(attentionMask, DataType.Bool, $"{prefix}/Cast");
        return Unsqueeze(g, asBool, new long[] { 1, 2 }, prefix);
    }

    public static string And(GraphBuilder g, string a, string b, string prefix) =>
        g.Op("And", $"{prefix}/And", new[] { a, b }, outputType: DataType.Bool)[0];

    public static string MatMul(GraphBuilder g, string x, string weight, string name) => g.Op1("MatMul", name, x, weight);

    /// <summary>[batch, seq, hidden] -> [batch, heads, seq, head_dim].</summary>
    public static string SplitHeads(GraphBuilder g, string x, FixtureOptions o, string prefix, int? heads = null)
    {
        var shape = g.Int64s($"{prefix}/Constant_shape", new long[] { 0, 0, heads ?? o.Heads, o.HeadDim });
        var reshaped = g.Op1("Reshape", $"{prefix}/Reshape", x, shape);
        return g.Op("Transpose", $"{prefix}/Transpose", new[] { reshaped }, attributes: n => n.With("perm", new long[] { 0, 2, 1, 3 }))[0];
    }

    /// <summary>
    /// Scaled dot-product attention on head-split q [b,H,s,d], k and v [b,H,T,d]; <paramref name="allowed"/> is a bool
    /// mask broadcastable to [b,H,s,T] (null: attend everywhere). Masked scores become the dtype's lowest finite value,
    /// so a fully masked row stays finite. Returns [b, s, hidden].
    /// </summary>
    public static string Attend(GraphBuilder g, string q, string k, string v, string? allowed, FixtureOptions o, string prefix)
    {
        var kT = g.Op("Transpose", $"{prefix}/Transpose", new[] { k }, attributes: n => n.With("perm", new long[] { 0, 1, 3, 2 }))[0];
        var scores = g.Op1("MatMul", $"{prefix}/MatMul", q, kT);
        var scale = g.Scalar($"{prefix}/Constant_scale", (float)(1.0 / Math.Sqrt(o.HeadDim)));
        var scaled = g.Op1("Mul", $"{prefix}/Mul", scores, scale);
        if (allowed is not null)
        {
            var lowest = g.Scalar($"{prefix}/Constant_lowest", g.IsFp16 ? (float)Half.MinValue : float.MinValue);
            scaled = g.Op1("Where", $"{prefix}/Where", allowed, scaled, lowest);
        }
        var probs = g.Op("Softmax", $"{prefix}/Softmax", new[] { scaled }, attributes: n => n.With("axis", -1L))[0];
        var context = g.Op1("MatMul", $"{prefix}/MatMul", probs, v);
        var merged = g.Op("Transpose", $"{prefix}/Transpose", new[] { context }, attributes: n => n.With("perm", new long[] { 0, 2, 1, 3 }))[0];
        var shape = g.Int64s($"{prefix}/Constant_merge_shape", new long[] { 0, 0, o.Hidden });
        return g.Op1("Reshape", $"{prefix}/Reshape", merged, shape);
    }

    /// <summary>
    /// torch's decomposed RMSNorm: <c>Pow -> ReduceMean -> Add(eps) -> Sqrt -> Reciprocal -> Mul</c> (or <c>Div</c>),
    /// then <c>Mul(gamma)</c>. In fp16 the statistics run in fp32 between Casts, as Llama's RMSNorm casts itself.
    /// </summary>
    public static string RmsNorm(GraphBuilder g, string x, string gamma, FixtureOptions o, string prefix)
    {
        var x32 = g.ToFp32(x, $"{prefix}/Cast");
        var two = g.Scalar($"{prefix}/Constant_two", 2f, fp32: true);
        var squared = g.Op1("Pow", $"{prefix}/Pow", x32, two);
        var meanSquare = g.Op("ReduceMean", $"{prefix}/ReduceMean", new[] { squared },
            attributes: n => n.With("axes", new long[] { -1 }).With("keepdims", 1L))[0];
        var eps = g.Scalar($"{prefix}/Constant_eps", o.Epsilon, fp32: true);
        var rms = g.Op1("Sqrt", $"{prefix}/Sqrt", g.Op1("Add", $"{prefix}/Add", meanSquare, eps));
        var normalized = o.RmsNorm == RmsNormStyle.Div
            ? g.Op1("Div", $"{prefix}/Div", x32, rms)
            : g.Op1("Mul", $"{prefix}/Mul", x32, g.Op1("Reciprocal", $"{prefix}/Reciprocal", rms));
        // An fp32 gamma keeps the whole norm in fp32 and casts its output (an fp32 island in an fp16 model).
        if (g.TypeOf(gamma) == DataType.Float)
            return g.ToFloatType(g.Op1("Mul", $"{prefix}/Mul", normalized, gamma), $"{prefix}/Cast");
        var back = g.ToFloatType(normalized, $"{prefix}/Cast");
        return g.Op1("Mul", $"{prefix}/Mul", back, gamma);
    }

    /// <summary>Decomposed LayerNorm: <c>ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul(gamma), Add(beta)</c>.</summary>
    public static string LayerNormDecomposed(GraphBuilder g, string x, string gamma, string beta, FixtureOptions o, string prefix, string? outputName = null)
    {
        var mean = g.Op("ReduceMean", $"{prefix}/ReduceMean", new[] { x }, attributes: n => n.With("axes", new long[] { -1 }).With("keepdims", 1L))[0];
        var centered = g.Op1("Sub", $"{prefix}/Sub", x, mean);
        var two = g.Scalar($"{prefix}/Constant_two", 2f);
        var variance = g.Op("ReduceMean", $"{prefix}/ReduceMean", new[] { g.Op1("Pow", $"{prefix}/Pow", centered, two) },
            attributes: n => n.With("axes", new long[] { -1 }).With("keepdims", 1L))[0];
        var eps = g.Scalar($"{prefix}/Constant_eps", o.Epsilon);
        var std = g.Op1("Sqrt", $"{prefix}/Sqrt", g.Op1("Add", $"{prefix}/Add", variance, eps));
        var normalized = g.Op1("Div", $"{prefix}/Div", centered, std);
        var scaled = g.Op1("Mul", $"{prefix}/Mul", normalized, gamma);
        return g.Op("Add", $"{prefix}/Add", new[] { scaled, beta }, outputNames: outputName is null ? null : new[] { outputName })[0];
    }
}

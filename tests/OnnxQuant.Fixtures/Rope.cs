using OnnxQuant.IR;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Fixtures;

/// <summary>
/// Rotary position embedding as TorchScript exports it: fixed <c>cos_cached</c>/<c>sin_cached</c> tables
/// [rows, head_dim] sliced to the runtime sequence length, and <c>x * cos + rotate_half(x) * sin</c> on q and k.
/// A sequence longer than the tables fails in ONNX Runtime's broadcast of the Mul, as real exports do.
/// </summary>
internal static class Rope
{
    public sealed record Cache(string Cos, string Sin);

    public static Cache Tables(GraphBuilder g, FixtureOptions o, int rows, string seqLen)
    {
        int d = o.HeadDim, half = d / 2;
        var cos = new float[rows * d];
        var sin = new float[rows * d];
        for (int p = 0; p < rows; p++)
            for (int i = 0; i < half; i++)
            {
                double angle = p / Math.Pow(10000, 2.0 * i / d);
                cos[p * d + i] = cos[p * d + i + half] = (float)Math.Cos(angle);
                sin[p * d + i] = sin[p * d + i + half] = (float)Math.Sin(angle);
            }
        var cosTable = g.Weight("model.rotary_emb.cos_cached", cos, new long[] { rows, d });
        var sinTable = g.Weight("model.rotary_emb.sin_cached", sin, new long[] { rows, d });
        var starts = g.Int64s("/model/rotary_emb/Constant_starts", new long[] { 0 });
        var axes = g.Int64s("/model/rotary_emb/Constant_axes", new long[] { 0 });
        var ends = Blocks.Unsqueeze(g, seqLen, new long[] { 0 }, "/model/rotary_emb/ends");
        string Slice(string table, string name) =>
            g.Op("Slice", name, new[] { table, starts, ends, axes }, outputType: g.TypeOf(table))[0];
        return new Cache(Slice(cosTable, "/model/rotary_emb/Slice"), Slice(sinTable, "/model/rotary_emb/Slice_1"));
    }

    /// <summary>x [b, H, s, d] -> x * cos + rotate_half(x) * sin, rotate_half(x) = concat(-x[..., d/2:], x[..., :d/2]).</summary>
    public static string Apply(GraphBuilder g, string x, Cache cache, FixtureOptions o, string prefix)
    {
        int half = o.HeadDim / 2;
        var lastAxis = g.Int64s($"{prefix}/Constant_axis", new long[] { -1 });
        var zero = g.Int64s($"{prefix}/Constant_zero", new long[] { 0 });
        var middle = g.Int64s($"{prefix}/Constant_half", new long[] { half });
        var end = g.Int64s($"{prefix}/Constant_end", new long[] { o.HeadDim });
        var x1 = g.Op("Slice", $"{prefix}/Slice", new[] { x, zero, middle, lastAxis }, outputType: g.TypeOf(x))[0];
        var x2 = g.Op("Slice", $"{prefix}/Slice", new[] { x, middle, end, lastAxis }, outputType: g.TypeOf(x))[0];
        var rotated = g.Op("Concat", $"{prefix}/Concat", new[] { g.Op1("Neg", $"{prefix}/Neg", x2), x1 }, attributes: n => n.With("axis", -1L))[0];
        var withCos = g.Op1("Mul", $"{prefix}/Mul", x, cache.Cos);
        var withSin = g.Op1("Mul", $"{prefix}/Mul", rotated, cache.Sin);
        return g.Op1("Add", $"{prefix}/Add", withCos, withSin);
    }
}

using OnnxQuant.IR;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Fixtures;

/// <summary>
/// Attention pieces the newer exporters write: grouped-query attention's key/value repeat in its three exported forms,
/// rotary position embedding in plain ops (torch/Optimum) and as the com.microsoft ops of onnxruntime-genai's model
/// builder (<c>RotaryEmbedding</c>, <c>GroupQueryAttention</c>); docs/architecture.md, "Exported graph patterns".
/// </summary>
internal static class AttentionParts
{
    private const double RopeTheta = 10000.0;

    /// <summary>
    /// [b, kv_heads, s, d] -> [b, heads, s, d], query head h reading key/value head h / (heads / kv_heads), as torch's
    /// <c>repeat_kv</c>: Unsqueeze at axis 2, then Expand, Tile or a Concat of copies to n_rep, then Reshape. The shapes
    /// are built at run time from the input's own dimensions, as a TorchScript export writes them.
    /// </summary>
    public static string RepeatKv(GraphBuilder g, string x, FixtureOptions o, string prefix)
    {
        int nRep = o.Heads / o.KvHeadCount;
        if (nRep == 1)
            return x;
        var batch = Blocks.Unsqueeze(g, Blocks.Dim(g, x, 0, $"{prefix}/batch"), new long[] { 0 }, $"{prefix}/batch");
        var seq = Blocks.Unsqueeze(g, Blocks.Dim(g, x, 2, $"{prefix}/seq"), new long[] { 0 }, $"{prefix}/seq");
        var kv = g.Int64s($"{prefix}/Constant_kv_heads", new long[] { o.KvHeadCount });
        var rep = g.Int64s($"{prefix}/Constant_n_rep", new long[] { nRep });
        var dim = g.Int64s($"{prefix}/Constant_head_dim", new long[] { o.HeadDim });
        var unsqueezed = Blocks.Unsqueeze(g, x, new long[] { 2 }, prefix);
        var repeated = o.RepeatKv switch
        {
            KvRepeat.Expand => g.Op1("Expand", $"{prefix}/Expand", unsqueezed,
                g.Op("Concat", $"{prefix}/Concat", new[] { batch, kv, rep, seq, dim }, attributes: n => n.With("axis", 0L), outputType: DataType.Int64)[0]),
            KvRepeat.Tile => g.Op1("Tile", $"{prefix}/Tile", unsqueezed, g.Int64s($"{prefix}/Constant_repeats", new long[] { 1, 1, nRep, 1, 1 })),
            KvRepeat.Concat => g.Op("Concat", $"{prefix}/Concat", Enumerable.Repeat(unsqueezed, nRep).ToArray(), attributes: n => n.With("axis", 2L))[0],
            _ => throw new ArgumentOutOfRangeException(nameof(o), o.RepeatKv, "unknown KV repeat"),
        };
        var heads = g.Int64s($"{prefix}/Constant_heads", new long[] { o.Heads });
        var shape = g.Op("Concat", $"{prefix}/Concat", new[] { batch, heads, seq, dim }, attributes: n => n.With("axis", 0L), outputType: DataType.Int64)[0];
        return g.Op1("Reshape", $"{prefix}/Reshape", repeated, shape);
    }

    /// <summary>cos and sin of position p times frequency i, [MaxPositions, HeadDim / 2] (the halves of a rotary table).</summary>
    private static (float[] Cos, float[] Sin) HalfTables(FixtureOptions o)
    {
        int half = o.HeadDim / 2;
        var cos = new float[o.MaxPositions * half];
        var sin = new float[cos.Length];
        for (int p = 0; p < o.MaxPositions; p++)
            for (int i = 0; i < half; i++)
            {
                double angle = p / Math.Pow(RopeTheta, 2.0 * i / o.HeadDim);
                cos[p * half + i] = (float)Math.Cos(angle);
                sin[p * half + i] = (float)Math.Sin(angle);
            }
        return (cos, sin);
    }

    /// <summary>The com.microsoft caches: cos_cache and sin_cache [MaxPositions, HeadDim / 2].</summary>
    public static (string Cos, string Sin) RotaryCaches(GraphBuilder g, FixtureOptions o)
    {
        var (cos, sin) = HalfTables(o);
        long[] shape = { o.MaxPositions, o.HeadDim / 2 };
        return (g.Weight("cos_cache", cos, shape), g.Weight("sin_cache", sin, shape));
    }

    /// <summary>torch's tables [MaxPositions, HeadDim] (each half repeated), gathered by position_ids and unsqueezed to [b, 1, s, d].</summary>
    public static (string Cos, string Sin) GatheredTables(GraphBuilder g, string positionIds, FixtureOptions o)
    {
        var (cos, sin) = HalfTables(o);
        int half = o.HeadDim / 2;
        float[] Full(float[] t) => Enumerable.Range(0, o.MaxPositions).SelectMany(p => t.Skip(p * half).Take(half).Concat(t.Skip(p * half).Take(half))).ToArray();
        long[] shape = { o.MaxPositions, o.HeadDim };
        string Gathered(string table, string name) =>
            Blocks.Unsqueeze(g, g.Op1("Gather", $"/model/rotary_emb/{name}/Gather", table, positionIds), new long[] { 1 }, $"/model/rotary_emb/{name}");
        return (Gathered(g.Weight("model.rotary_emb.cos_cached", Full(cos), shape), "cos"),
                Gathered(g.Weight("model.rotary_emb.sin_cached", Full(sin), shape), "sin"));
    }

    /// <summary>Plain-op RoPE on [b, H, s, d]: <c>x * cos + rotate_half(x) * sin</c>, rotate_half = Concat(-x2, x1).</summary>
    public static string Rope(GraphBuilder g, string x, string cos, string sin, FixtureOptions o, string prefix)
    {
        int half = o.HeadDim / 2;
        var axis = g.Int64s($"{prefix}/Constant_axis", new long[] { -1 });
        string Slice(long start, long end) => g.Op1("Slice", $"{prefix}/Slice", x,
            g.Int64s($"{prefix}/Constant_start", new[] { start }), g.Int64s($"{prefix}/Constant_end", new[] { end }), axis);
        var x1 = Slice(0, half);
        var x2 = Slice(half, o.HeadDim);
        var rotated = g.Op("Concat", $"{prefix}/Concat", new[] { g.Op1("Neg", $"{prefix}/Neg", x2), x1 }, attributes: n => n.With("axis", -1L))[0];
        return g.Op1("Add", $"{prefix}/Add", g.Op1("Mul", $"{prefix}/Mul", x, cos), g.Op1("Mul", $"{prefix}/Mul", rotated, sin));
    }

    /// <summary>com.microsoft <c>RotaryEmbedding</c> on a [b, s, heads · d] projection.</summary>
    public static string RotaryEmbedding(GraphBuilder g, string x, string positionIds, (string Cos, string Sin) caches, int heads, string name) =>
        g.Op("RotaryEmbedding", name, new[] { x, positionIds, caches.Cos, caches.Sin }, domain: Nodes.MicrosoftDomain,
            attributes: n => n.With("interleaved", 0L).With("num_heads", (long)heads))[0];

    /// <summary>What the builder feeds every GroupQueryAttention: seqlens_k = sum(mask) - 1 (int32 [b]) and the total length (int32 scalar).</summary>
    public static (string SeqLensK, string Total) GqaLengths(GraphBuilder g, string attentionMask, string prefix)
    {
        var sum = g.Op("ReduceSum", $"{prefix}/ReduceSum", new[] { attentionMask, g.Int64s($"{prefix}/Constant_axes", new long[] { 1 }) },
            attributes: n => n.With("keepdims", 0L), outputType: DataType.Int64)[0];
        var minusOne = g.Op("Sub", $"{prefix}/Sub", new[] { sum, g.Int64Scalar($"{prefix}/Constant_one", 1) }, outputType: DataType.Int64)[0];
        var total = Blocks.Dim(g, attentionMask, 1, $"{prefix}/total");
        return (g.Cast(minusOne, DataType.Int32, $"{prefix}/Cast"), g.Cast(total, DataType.Int32, $"{prefix}/Cast"));
    }

    /// <summary>
    /// com.microsoft <c>GroupQueryAttention</c>: query [b, s, H·d] (or packed q|k|v with empty key and value), past
    /// [b, kvH, past, d]; returns the context [b, s, H·d] and writes <c>present.{layer}.key/value</c>. With
    /// <paramref name="caches"/> the op rotates q and k itself (<c>do_rotary</c>).
    /// </summary>
    public static string GroupQueryAttention(GraphBuilder g, string query, string key, string value, (string Key, string Value) past,
        (string SeqLensK, string Total) lengths, (string Cos, string Sin)? caches, FixtureOptions o, int layer, string name)
    {
        var inputs = new List<string> { query, key, value, past.Key, past.Value, lengths.SeqLensK, lengths.Total };
        if (caches is { } c)
            inputs.AddRange(new[] { c.Cos, c.Sin });
        return g.Op("GroupQueryAttention", name, inputs, outputs: 3, domain: Nodes.MicrosoftDomain, outputType: g.FloatType,
            attributes: n => n.With("num_heads", (long)o.Heads).With("kv_num_heads", (long)o.KvHeadCount).With("do_rotary", caches is null ? 0L : 1L),
            outputNames: new[] { $"{name}_output_0", $"present.{layer}.key", $"present.{layer}.value" })[0];
    }
}

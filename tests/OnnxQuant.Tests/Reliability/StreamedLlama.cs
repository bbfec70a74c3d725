using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using OnnxQuant.Fixtures;
using OnnxQuant.IR;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Tests.Reliability;

/// <summary>Sizes of a <see cref="StreamedLlama"/> model.</summary>
public sealed record StreamedLlamaOptions
{
    public int Layers { get; init; } = 2;
    public int Hidden { get; init; } = 256;
    public int Heads { get; init; } = 4;
    public int Intermediate { get; init; } = 688;
    public int Vocab { get; init; } = 4096;
    public bool Fp16 { get; init; } = true;
    public ulong Seed { get; init; } = 1;

    /// <summary>A 7B-wide model (hidden 4096, SwiGLU 11008, vocab 32000) with few enough layers for a few GB.</summary>
    public static StreamedLlamaOptions Wide(int layers) => new() { Layers = layers, Hidden = 4096, Heads = 32, Intermediate = 11008, Vocab = 32000 };

    public long Parameters => (long)Layers * (4L * Hidden * Hidden + 3L * Hidden * Intermediate + 2L * Hidden) + 2L * Vocab * Hidden + Hidden;

    public long WeightBytes => Parameters * (Fp16 ? 2 : 4);

    /// <summary>The largest single tensor: the embedding / lm_head (vocab x hidden) or an MLP weight.</summary>
    public long LargestTensorBytes => Math.Max((long)Vocab * Hidden, (long)Hidden * Intermediate) * (Fp16 ? 2 : 4);
}

/// <summary>
/// Writes a torch-export style Llama (decomposed RMSNorm with fp32 statistics, plain-op attention, SwiGLU; no RoPE and
/// no causal mask, which change nothing a quantizer looks at) of any size straight to disk: the graph is small and built in memory, every large weight is declared as external data
/// and its values are generated chunk by chunk into the data file, so a multi-GB model never sits in memory. Values
/// are seeded uniform noise scaled by 1/sqrt(fan-in), enough to keep activations finite through the layers.
/// </summary>
public static class StreamedLlama
{
    private const int Alignment = 4096;
    private const int ChunkValues = 1 << 20;

    private sealed record Pending(string Name, long[] Shape, float Scale);

    public static string Write(StreamedLlamaOptions o, string folder, string fileName = "model.onnx")
    {
        Directory.CreateDirectory(folder);
        var g = new GraphBuilder(o.Fp16);
        var pending = new List<Pending>();
        // Large weights are declared as graph inputs while the graph is built (so the builder knows their type), then
        // turned into external initializers.
        string Big(string name, long rows, long cols, float scale)
        {
            pending.Add(new Pending(name, [rows, cols], scale));
            return g.Input(name, g.FloatType, rows, cols);
        }
        var rng = new Random((int)o.Seed);
        string Gamma(string name) =>
            g.Weight(name, Enumerable.Range(0, o.Hidden).Select(_ => 0.8f + 0.4f * rng.NextSingle()).ToArray(), [o.Hidden]);

        var ids = g.Input("input_ids", DataType.Int64, "batch", "sequence");
        var table = Big("model.embed_tokens.weight", o.Vocab, o.Hidden, 1f);
        var hidden = g.Op1("Gather", "/model/embed_tokens/Gather", table, ids);
        float inScale = 1f / MathF.Sqrt(o.Hidden), midScale = 1f / MathF.Sqrt(o.Intermediate);
        int weightNumber = 1000;
        string Linear(string x, string node, long rows, long cols, float scale) =>
            g.Op1("MatMul", node, x, Big($"onnx::MatMul_{weightNumber++}", rows, cols, scale));

        for (int i = 0; i < o.Layers; i++)
        {
            string layer = $"/model/layers.{i}", attn = $"{layer}/self_attn", mlp = $"{layer}/mlp";
            var x = RmsNorm(g, hidden, Gamma($"model.layers.{i}.input_layernorm.weight"), $"{layer}/input_layernorm");
            var q = Linear(x, $"{attn}/q_proj/MatMul", o.Hidden, o.Hidden, inScale);
            var k = Linear(x, $"{attn}/k_proj/MatMul", o.Hidden, o.Hidden, inScale);
            var v = Linear(x, $"{attn}/v_proj/MatMul", o.Hidden, o.Hidden, inScale);
            var context = Attention(g, q, k, v, o, attn);
            hidden = g.Op1("Add", $"{layer}/Add", hidden, Linear(context, $"{attn}/o_proj/MatMul", o.Hidden, o.Hidden, inScale));

            var y = RmsNorm(g, hidden, Gamma($"model.layers.{i}.post_attention_layernorm.weight"), $"{layer}/post_attention_layernorm");
            var gate = Linear(y, $"{mlp}/gate_proj/MatMul", o.Hidden, o.Intermediate, inScale);
            var up = Linear(y, $"{mlp}/up_proj/MatMul", o.Hidden, o.Intermediate, inScale);
            var silu = g.Op1("Mul", $"{mlp}/act_fn/Mul", gate, g.Op1("Sigmoid", $"{mlp}/act_fn/Sigmoid", gate));
            var down = Linear(g.Op1("Mul", $"{mlp}/Mul", silu, up), $"{mlp}/down_proj/MatMul", o.Intermediate, o.Hidden, midScale);
            hidden = g.Op1("Add", $"{layer}/Add", hidden, down);
        }
        var final = RmsNorm(g, hidden, Gamma("model.norm.weight"), "/model/norm");
        var lmHead = Big("lm_head.weight_T", o.Hidden, o.Vocab, inScale);
        g.Op("MatMul", "/lm_head/MatMul", [final, lmHead], outputNames: ["logits"]);
        g.Output("logits", "batch", "sequence", o.Vocab);

        var proto = g.ToModelProto("streamed_llama", $"synthetic {o.Layers}-layer Llama, hidden {o.Hidden}, written by StreamedLlama");
        string dataName = fileName + ".data";
        using (var data = new FileStream(Path.Combine(folder, dataName), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            var type = o.Fp16 ? DataType.Float16 : DataType.Float;
            ulong stream = o.Seed;
            foreach (var p in pending)
            {
                proto.Graph.Input.Remove(proto.Graph.Input.Single(i => i.Name == p.Name));
                long offset = (data.Position + Alignment - 1) / Alignment * Alignment;
                data.Write(new byte[offset - data.Position]);
                long count = p.Shape[0] * p.Shape[1];
                WriteValues(data, count, p.Scale, type, ++stream);
                proto.Graph.Initializer.Add(External(p.Name, p.Shape, type, dataName, offset, data.Position - offset));
            }
        }
        string path = Path.Combine(folder, fileName);
        File.WriteAllBytes(path, proto.ToByteArray());
        return path;
    }

    // x * 1/sqrt(mean(x^2) + eps) in fp32, back to the model's type, times gamma (what torch exports for Llama's RMSNorm).
    private static string RmsNorm(GraphBuilder g, string x, string gamma, string prefix)
    {
        var x32 = g.ToFp32(x, $"{prefix}/Cast");
        var squared = g.Op1("Pow", $"{prefix}/Pow", x32, g.Scalar($"{prefix}/Constant", 2f, fp32: true));
        var mean = g.Op("ReduceMean", $"{prefix}/ReduceMean", [squared], attributes: n => n.With("axes", new long[] { -1 }).With("keepdims", 1L))[0];
        var root = g.Op1("Sqrt", $"{prefix}/Sqrt", g.Op1("Add", $"{prefix}/Add", mean, g.Scalar($"{prefix}/Constant_1", 1e-5f, fp32: true)));
        var normalized = g.Op1("Mul", $"{prefix}/Mul", x32, g.Op1("Reciprocal", $"{prefix}/Reciprocal", root));
        return g.Op1("Mul", $"{prefix}/Mul_1", g.ToFloatType(normalized, $"{prefix}/Cast_1"), gamma);
    }

    // Multi-head softmax(q kᵀ / sqrt(d)) v over [batch, heads, sequence, head_dim], merged back to [batch, sequence, hidden].
    private static string Attention(GraphBuilder g, string q, string k, string v, StreamedLlamaOptions o, string prefix)
    {
        int headDim = o.Hidden / o.Heads;
        var split = g.Int64s($"{prefix}/Constant_split", [0, 0, o.Heads, headDim]);
        string Heads(string x, string name, long[] perm) =>
            g.Op("Transpose", $"{prefix}/Transpose_{name}", [g.Op1("Reshape", $"{prefix}/Reshape_{name}", x, split)], attributes: n => n.With("perm", perm))[0];
        var scores = g.Op1("MatMul", $"{prefix}/MatMul", Heads(q, "q", [0, 2, 1, 3]), Heads(k, "k", [0, 2, 3, 1]));
        var scaled = g.Op1("Mul", $"{prefix}/Mul", scores, g.Scalar($"{prefix}/Constant_scale", 1f / MathF.Sqrt(headDim)));
        var probs = g.Op("Softmax", $"{prefix}/Softmax", [scaled], attributes: n => n.With("axis", -1L))[0];
        var context = g.Op1("MatMul", $"{prefix}/MatMul_1", probs, Heads(v, "v", [0, 2, 1, 3]));
        var merged = g.Op("Transpose", $"{prefix}/Transpose", [context], attributes: n => n.With("perm", new long[] { 0, 2, 1, 3 }))[0];
        return g.Op1("Reshape", $"{prefix}/Reshape", merged, g.Int64s($"{prefix}/Constant_merge", [0, 0, o.Hidden]));
    }

    private static TensorProto External(string name, long[] shape, DataType type, string location, long offset, long length)
    {
        var t = new TensorProto { Name = name, DataType = (int)type, DataLocation = TensorProto.Types.DataLocation.External };
        t.Dims.AddRange(shape);
        t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        return t;
    }

    // Uniform in [-scale*sqrt(3), scale*sqrt(3)] (unit variance times scale), one chunk in memory at a time.
    private static void WriteValues(Stream output, long count, float scale, DataType type, ulong seed)
    {
        var values = new float[ChunkValues];
        var bytes = new byte[ChunkValues * (type == DataType.Float16 ? 2 : 4)];
        ulong state = seed * 0x9E3779B97F4A7C15UL + 0x632BE59BD9B4E019UL;
        float amplitude = scale * MathF.Sqrt(3f);
        for (long done = 0; done < count; done += ChunkValues)
        {
            int n = (int)Math.Min(ChunkValues, count - done);
            for (int i = 0; i < n; i++)
            {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                values[i] = ((state >> 40) * (1f / (1UL << 24)) * 2f - 1f) * amplitude;
            }
            int size;
            if (type == DataType.Float16)
            {
                TensorPrimitives.ConvertToHalf(values.AsSpan(0, n), MemoryMarshal.Cast<byte, Half>(bytes.AsSpan(0, n * 2)));
                size = n * 2;
            }
            else
            {
                MemoryMarshal.AsBytes(values.AsSpan(0, n)).CopyTo(bytes);
                size = n * 4;
            }
            output.Write(bytes, 0, size);
        }
    }
}

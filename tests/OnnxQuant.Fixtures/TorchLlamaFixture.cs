using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Fixtures;

/// <summary>
/// A torch.onnx-export style Llama (RoPE from fixed cos/sin tables with <see cref="FixtureOptions.RopeRows"/>, else none): input_ids [+ attention_mask] -> Gather embedding -> per layer decomposed
/// RMSNorm, q/k/v MatMuls, causal attention in plain ops, o_proj, residual Add, RMSNorm, SwiGLU, residual Add -> final
/// RMSNorm -> <c>/lm_head/MatMul</c> -> logits. Transposed linear weights get torch's <c>onnx::MatMul_N</c> names.
/// </summary>
internal static class TorchLlamaFixture
{
    public static List<OutlierSite> Build(GraphBuilder g, FixtureWeights w, FixtureOptions o)
    {
        int matmulWeights = 0;
        // torch names the transposed copies it makes of nn.Linear weights by a running number.
        LlamaParts.WeightNamer name = role => role.EndsWith("proj", StringComparison.Ordinal) || role == "lm_head"
            ? $"onnx::MatMul_{1000 + matmulWeights++}"
            : $"model.{role}.weight";
        var sites = new List<OutlierSite>();

        var ids = g.Input("input_ids", DataType.Int64, "batch", "sequence");
        string? mask = o.AttentionMask ? g.Input("attention_mask", DataType.Int64, "batch", "sequence") : null;
        var table = w.Embedding("model.embed_tokens.weight", "embed_tokens", o.Vocab, o.Hidden);
        var hidden = g.Op1("Gather", "/model/embed_tokens/Gather", table, ids);

        var seqLen = Blocks.Dim(g, ids, 1, "/model");
        var allowed = Blocks.CausalMask(g, seqLen, seqLen, "/model/causal_mask");
        if (mask is not null)
            allowed = Blocks.And(g, allowed, Blocks.KeyMask(g, mask, "/model/attention_mask"), "/model/attention_mask");

        var rope = o.RopeRows is { } rows ? Rope.Tables(g, o, rows, seqLen) : null;
        for (int i = 0; i < o.Layers; i++)
        {
            string layer = $"/model/layers.{i}", attn = $"{layer}/self_attn", mlp = $"{layer}/mlp";
            var inputNorm = Norm(g, w, o, hidden, $"layers.{i}.input_layernorm", $"{layer}/input_layernorm", out var normNode, out var factors);
            var qkv = LlamaParts.Projections(g, w, inputNorm, factors, o, i, attn, name);
            sites.Add(new OutlierSite(normNode, inputNorm, qkv.Consumers));
            var (q, k) = rope is null ? (qkv.Q, qkv.K) : (Rope.Apply(g, qkv.Q, rope, o, $"{attn}/q_rope"), Rope.Apply(g, qkv.K, rope, o, $"{attn}/k_rope"));
            var context = Blocks.Attend(g, q, k, qkv.V, allowed, o, attn);
            var attnOut = LlamaParts.OutputProjection(g, w, context, o, i, attn, name);
            hidden = g.Op1("Add", $"{layer}/Add", hidden, attnOut);

            var postNorm = Norm(g, w, o, hidden, $"layers.{i}.post_attention_layernorm", $"{layer}/post_attention_layernorm", out normNode, out factors);
            var mlpOut = LlamaParts.SwiGlu(g, w, postNorm, factors, o, i, mlp, name, out var mlpConsumers);
            sites.Add(new OutlierSite(normNode, postNorm, mlpConsumers));
            hidden = g.Op1("Add", $"{layer}/Add", hidden, mlpOut);
        }

        var finalNorm = Norm(g, w, o, hidden, "norm", "/model/norm", out var finalNode, out var finalFactors);
        LlamaParts.LmHead(g, w, finalNorm, finalFactors, o, name, "sequence");
        sites.Add(new OutlierSite(finalNode, finalNorm, new[] { "/lm_head/MatMul" }));
        return sites;
    }

    private static string Norm(GraphBuilder g, FixtureWeights w, FixtureOptions o, string x, string role, string prefix, out string gammaMulNode, out float[]? factors)
    {
        var gamma = w.Gamma($"model.{role}.weight", role, outliers: true, out factors);
        var y = Blocks.RmsNorm(g, x, gamma, o, prefix);
        gammaMulNode = g.ProducerOf(y);
        return y;
    }
}

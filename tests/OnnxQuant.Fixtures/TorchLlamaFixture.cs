using OnnxQuant.IR;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Fixtures;

/// <summary>
/// A torch.onnx-export style Llama (RoPE from fixed cos/sin tables with <see cref="FixtureOptions.RopeRows"/>, else none): input_ids [+ attention_mask] -> Gather embedding -> per layer decomposed
/// RMSNorm, q/k/v MatMuls, causal attention in plain ops, o_proj, residual Add, RMSNorm, SwiGLU, residual Add -> final
/// RMSNorm -> <c>/lm_head/MatMul</c> -> logits. Transposed linear weights get torch's <c>onnx::MatMul_N</c> names.
/// With fewer key/value heads they are repeated (<see cref="AttentionParts.RepeatKv"/>). As
/// <see cref="FixtureFamily.OptimumLlama"/>: also position_ids, RoPE from gathered tables, and
/// <c>past_key_values.{i}.key/value</c> [batch_size, kv_heads, past_sequence_length, head_dim] concatenated before the
/// new keys/values and returned as <c>present.{i}.key/value</c>.
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

        bool optimum = o.Family == FixtureFamily.OptimumLlama;
        const string total = "past_sequence_length + sequence";
        var ids = g.Input("input_ids", DataType.Int64, "batch", "sequence");
        string? mask = o.AttentionMask || optimum ? g.Input("attention_mask", DataType.Int64, "batch", optimum ? total : "sequence") : null;
        string? positions = optimum ? g.Input("position_ids", DataType.Int64, "batch", "sequence") : null;
        var past = new List<(string Key, string Value)>();
        if (optimum)
            for (int i = 0; i < o.Layers; i++)
                past.Add((g.Input($"past_key_values.{i}.key", g.FloatType, "batch", o.KvHeadCount, "past_sequence_length", o.HeadDim),
                          g.Input($"past_key_values.{i}.value", g.FloatType, "batch", o.KvHeadCount, "past_sequence_length", o.HeadDim)));
        var table = w.Embedding("model.embed_tokens.weight", "embed_tokens", o.Vocab, o.Hidden);
        var hidden = g.Op1("Gather", "/model/embed_tokens/Gather", table, ids);
        var gathered = positions is null ? ((string, string)?)null : AttentionParts.GatheredTables(g, positions, o);

        var seqLen = Blocks.Dim(g, ids, 1, "/model");
        var totalLen = optimum ? Blocks.Dim(g, mask!, 1, "/model/total") : seqLen;
        var allowed = Blocks.CausalMask(g, seqLen, totalLen, "/model/causal_mask");
        if (mask is not null)
            allowed = Blocks.And(g, allowed, Blocks.KeyMask(g, mask, "/model/attention_mask"), "/model/attention_mask");

        var sliced = o.RopeRows is { } rows ? Rope.Tables(g, o, rows, seqLen) : null;
        for (int i = 0; i < o.Layers; i++)
        {
            string layer = $"/model/layers.{i}", attn = $"{layer}/self_attn", mlp = $"{layer}/mlp";
            var inputNorm = Norm(g, w, o, hidden, $"layers.{i}.input_layernorm", $"{layer}/input_layernorm", out var normNode, out var factors);
            var qkv = LlamaParts.Projections(g, w, inputNorm, factors, o, i, attn, name);
            sites.Add(new OutlierSite(normNode, inputNorm, qkv.Consumers));
            string q = qkv.Q, keys = qkv.K, values = qkv.V;
            if (gathered is { } r)
            {
                q = AttentionParts.Rope(g, q, r.Item1, r.Item2, o, $"{attn}/rotary_q");
                keys = AttentionParts.Rope(g, keys, r.Item1, r.Item2, o, $"{attn}/rotary_k");
            }
            else if (sliced is not null)
            {
                q = Rope.Apply(g, q, sliced, o, $"{attn}/q_rope");
                keys = Rope.Apply(g, keys, sliced, o, $"{attn}/k_rope");
            }
            if (optimum)
            {
                keys = g.Op("Concat", $"{attn}/Concat", new[] { past[i].Key, keys }, attributes: n => n.With("axis", 2L), outputNames: new[] { $"present.{i}.key" })[0];
                values = g.Op("Concat", $"{attn}/Concat", new[] { past[i].Value, values }, attributes: n => n.With("axis", 2L), outputNames: new[] { $"present.{i}.value" })[0];
            }
            keys = AttentionParts.RepeatKv(g, keys, o, $"{attn}/repeat_kv");
            values = AttentionParts.RepeatKv(g, values, o, $"{attn}/repeat_kv");
            var context = Blocks.Attend(g, q, keys, values, allowed, o, attn);
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
        if (optimum)
            for (int i = 0; i < o.Layers; i++)
            {
                g.Output($"present.{i}.key", "batch", o.KvHeadCount, total, o.HeadDim);
                g.Output($"present.{i}.value", "batch", o.KvHeadCount, total, o.HeadDim);
            }
        return sites;
    }

    private static string Norm(GraphBuilder g, FixtureWeights w, FixtureOptions o, string x, string role, string prefix, out string gammaMulNode, out float[]? factors)
    {
        var gamma = w.Gamma($"model.{role}.weight", role, outliers: true, out factors, fp32: o.Fp32Norms);
        var y = Blocks.RmsNorm(g, x, gamma, o, prefix);
        gammaMulNode = g.ProducerOf(y);
        return y;
    }
}

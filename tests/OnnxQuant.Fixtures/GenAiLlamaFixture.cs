using OnnxQuant.IR;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Fixtures;

/// <summary>
/// An onnxruntime-genai model-builder style Llama: layer 0's input norm is <c>SimplifiedLayerNormalization</c>, every
/// later norm <c>SkipSimplifiedLayerNormalization</c> (com.microsoft; output 0 the normalized value, output 3 the
/// residual sum input + skip), attention in plain ops. Inputs input_ids, attention_mask [batch, total_sequence_length]
/// (masks keys) and position_ids (index a learned position embedding, since the fixture has no RoPE); with
/// <see cref="FixtureOptions.KvCache"/>, <c>past_key_values.{i}.key/value</c> [batch, heads, past, head_dim] are
/// concatenated with the new keys/values and returned as <c>present.{i}.key/value</c>. With
/// <see cref="FixtureOptions.Attention"/> the attention is the builder's com.microsoft <c>GroupQueryAttention</c>, fed by
/// separate q/k/v projections rotated by <c>RotaryEmbedding</c>, or by one packed QKV projection it rotates itself;
/// fewer key/value heads than query heads make it grouped-query.
/// </summary>
internal static class GenAiLlamaFixture
{
    public static List<OutlierSite> Build(GraphBuilder g, FixtureWeights w, FixtureOptions o)
    {
        static string Name(string role)
        {
            if (role == "lm_head") return "lm_head.MatMul.weight";
            int dot = role.LastIndexOf('.');
            string proj = role[(dot + 1)..];
            string group = proj is "q_proj" or "k_proj" or "v_proj" or "qkv_proj" or "o_proj" ? "attn" : "mlp";
            return $"model.{role[..dot]}.{group}.{proj}.MatMul.weight";
        }
        var sites = new List<OutlierSite>();
        const string seq = "sequence_length", total = "total_sequence_length";

        var ids = g.Input("input_ids", DataType.Int64, "batch_size", seq);
        var mask = g.Input("attention_mask", DataType.Int64, "batch_size", total);
        var positions = g.Input("position_ids", DataType.Int64, "batch_size", seq);
        var past = new List<(string Key, string Value)>();
        if (o.KvCache)
            for (int i = 0; i < o.Layers; i++)
                past.Add((g.Input($"past_key_values.{i}.key", g.FloatType, "batch_size", o.KvHeadCount, "past_sequence_length", o.HeadDim),
                          g.Input($"past_key_values.{i}.value", g.FloatType, "batch_size", o.KvHeadCount, "past_sequence_length", o.HeadDim)));

        var tokens = g.Op1("Gather", "/model/embed_tokens/Gather", w.Embedding("model.embed_tokens.weight", "embed_tokens", o.Vocab, o.Hidden), ids);
        var posTable = w.Embedding("model.embed_positions.weight", "embed_positions", o.MaxPositions, o.Hidden);
        var posEmbed = g.Op1("Gather", "/model/embed_positions/Gather", posTable, positions);
        var embeddings = g.Op1("Add", "/model/embeddings/Add", tokens, posEmbed);

        // The mask covers past + current keys; its width is the total length the causal mask needs.
        var seqLen = Blocks.Dim(g, ids, 1, "/model/attn_mask_reformat/input_ids");
        var totalLen = Blocks.Dim(g, mask, 1, "/model/attn_mask_reformat/attention_mask");
        var allowed = Blocks.And(g, Blocks.CausalMask(g, seqLen, totalLen, "/model/attn_mask_reformat/causal"),
            Blocks.KeyMask(g, mask, "/model/attn_mask_reformat/keys"), "/model/attn_mask_reformat");

        var fused = o.Attention == GenAiAttention.PlainOps ? ((string, string)?)null : AttentionParts.GqaLengths(g, mask, "/model/attn_mask_reformat/gqa");
        var caches = fused is null ? ((string, string)?)null : AttentionParts.RotaryCaches(g, o);

        string pendingOutput = "";   // the last sublayer output, added to the residual by the next Skip norm
        string residual = embeddings;
        for (int i = 0; i < o.Layers; i++)
        {
            string layer = $"/model/layers.{i}", attn = $"{layer}/attn", mlp = $"{layer}/mlp";
            string inputNorm, normNode;
            var gamma = w.Gamma($"model.layers.{i}.input_layernorm.weight", $"layers.{i}.input_layernorm", outliers: true, out var factors);
            if (i == 0)
            {
                normNode = $"{layer}/input_layernorm/LayerNorm";
                inputNorm = g.Op("SimplifiedLayerNormalization", normNode, new[] { embeddings, gamma },
                    attributes: n => n.With("axis", -1L).With("epsilon", o.Epsilon))[0];
            }
            else
            {
                (inputNorm, residual) = SkipNorm(g, pendingOutput, residual, gamma, o, $"{layer}/input_layernorm/SkipLayerNorm");
                normNode = g.ProducerOf(inputNorm);
            }
            string context;
            if (fused is { } lengths && o.Attention == GenAiAttention.PackedGroupQueryAttention)
            {
                var packed = LlamaParts.PackedProjection(g, w, inputNorm, factors, o, i, attn, Name, out var consumer);
                sites.Add(new OutlierSite(normNode, inputNorm, new[] { consumer }));
                context = AttentionParts.GroupQueryAttention(g, packed, "", "", past[i], lengths, caches, o, i, $"{attn}/GroupQueryAttention");
            }
            else if (fused is { } separate)
            {
                var qkv = LlamaParts.Projections(g, w, inputNorm, factors, o, i, attn, Name, split: false);
                sites.Add(new OutlierSite(normNode, inputNorm, qkv.Consumers));
                var q = AttentionParts.RotaryEmbedding(g, qkv.Q, positions, caches!.Value, o.Heads, $"{attn}/q_rotary/RotaryEmbedding");
                var k = AttentionParts.RotaryEmbedding(g, qkv.K, positions, caches!.Value, o.KvHeadCount, $"{attn}/k_rotary/RotaryEmbedding");
                context = AttentionParts.GroupQueryAttention(g, q, k, qkv.V, past[i], separate, null, o, i, $"{attn}/GroupQueryAttention");
            }
            else
            {
                var qkv = LlamaParts.Projections(g, w, inputNorm, factors, o, i, attn, Name);
                sites.Add(new OutlierSite(normNode, inputNorm, qkv.Consumers));
                string keys = qkv.K, values = qkv.V;
                if (o.KvCache)
                {
                    keys = g.Op("Concat", $"{attn}/Concat", new[] { past[i].Key, qkv.K }, attributes: n => n.With("axis", 2L),
                        outputNames: new[] { $"present.{i}.key" })[0];
                    values = g.Op("Concat", $"{attn}/Concat", new[] { past[i].Value, qkv.V }, attributes: n => n.With("axis", 2L),
                        outputNames: new[] { $"present.{i}.value" })[0];
                }
                keys = AttentionParts.RepeatKv(g, keys, o, $"{attn}/repeat_kv");
                values = AttentionParts.RepeatKv(g, values, o, $"{attn}/repeat_kv");
                context = Blocks.Attend(g, qkv.Q, keys, values, allowed, o, attn);
            }
            var attnOut = LlamaParts.OutputProjection(g, w, context, o, i, attn, Name);

            var postGamma = w.Gamma($"model.layers.{i}.post_attention_layernorm.weight", $"layers.{i}.post_attention_layernorm", outliers: true, out var postFactors);
            (var postNorm, residual) = SkipNorm(g, attnOut, residual, postGamma, o, $"{layer}/post_attention_layernorm/SkipLayerNorm");
            pendingOutput = LlamaParts.SwiGlu(g, w, postNorm, postFactors, o, i, mlp, Name, out var mlpConsumers);
            sites.Add(new OutlierSite(g.ProducerOf(postNorm), postNorm, mlpConsumers));
        }

        var finalGamma = w.Gamma("model.norm.weight", "norm", outliers: true, out var finalFactors);
        var finalNorm = g.Op("SkipSimplifiedLayerNormalization", "/model/norm/SkipLayerNorm", new[] { pendingOutput, residual, finalGamma },
            domain: Nodes.MicrosoftDomain, attributes: n => n.With("epsilon", o.Epsilon))[0];
        LlamaParts.LmHead(g, w, finalNorm, finalFactors, o, Name, seq);
        sites.Add(new OutlierSite("/model/norm/SkipLayerNorm", finalNorm, new[] { "/lm_head/MatMul" }));

        if (o.KvCache)
            for (int i = 0; i < o.Layers; i++)
            {
                g.Output($"present.{i}.key", "batch_size", o.KvHeadCount, total, o.HeadDim);
                g.Output($"present.{i}.value", "batch_size", o.KvHeadCount, total, o.HeadDim);
            }
        return sites;
    }

    /// <summary>SkipSimplifiedLayerNormalization(input, skip, gamma): (normalized output 0, residual-sum output 3).</summary>
    private static (string Normalized, string Residual) SkipNorm(GraphBuilder g, string input, string skip, string gamma, FixtureOptions o, string name)
    {
        var outs = g.Op("SkipSimplifiedLayerNormalization", name, new[] { input, skip, gamma }, outputs: 4, domain: Nodes.MicrosoftDomain,
            attributes: n => n.With("epsilon", o.Epsilon), skipOutputs: new HashSet<int> { 1, 2 });
        return (outs[0], outs[3]);
    }
}

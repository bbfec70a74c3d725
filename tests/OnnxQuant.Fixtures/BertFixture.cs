using OnnxQuant.IR;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Fixtures;

/// <summary>
/// A post-LN BERT encoder as optimum exports it: word + position + token-type embeddings -> LayerNorm; per layer
/// q/k/v MatMul+Add, attention masked by attention_mask, output MatMul+Add, residual + LayerNorm, fc1 MatMul+Add, GELU
/// (Erf form), fc2 MatMul+Add, residual + LayerNorm; outputs <c>last_hidden_state</c> and <c>pooler_output</c>
/// (Gemm transB=1 on the first token, Tanh). The norms are LayerNormalization, decomposed, or SkipLayerNormalization
/// (<see cref="FixtureOptions.BertNorm"/>). <see cref="FixtureFamily.Vit"/> is the same encoder fed float patches
/// (pixel_values [batch, patches, Vocab]) through a patch projection instead of token embeddings, with no mask.
/// Outliers: in a post-LN model the norm output is also the residual, so besides gamma/beta and the reading weights'
/// rows the residual branch gets a <c>Mul(1/scale)</c> to keep the function; the last norm (the model output) is not scaled.
/// </summary>
internal static class BertFixture
{
    public static List<OutlierSite> Build(GraphBuilder g, FixtureWeights w, FixtureOptions o)
    {
        var sites = new List<OutlierSite>();
        var (summed, allowed) = o.Family == FixtureFamily.Vit ? PatchEmbeddings(g, w, o) : TokenEmbeddings(g, w, o);
        var hidden = FullNorm(g, w, o, summed, "embeddings.LayerNorm", "/embeddings/LayerNorm", scaled: true, out var factors);

        for (int i = 0; i < o.Layers; i++)
        {
            string layer = $"/encoder/layer.{i}", role = $"encoder.layer.{i}";
            string[] qkvNames = { $"{layer}/attention/self/query/MatMul", $"{layer}/attention/self/key/MatMul", $"{layer}/attention/self/value/MatMul" };
            string[] qkvRoles = { "query", "key", "value" };
            var heads = new string[3];
            for (int p = 0; p < 3; p++)
            {
                string r = $"{role}.attention.self.{qkvRoles[p]}";
                var projected = Linear(g, w, hidden, r, qkvNames[p], o.Hidden, o.Hidden, factors);
                heads[p] = Blocks.SplitHeads(g, projected, o, $"{layer}/attention/self");
            }
            var residual = ResidualBranch(g, hidden, factors, $"{layer}/attention/output/residual");
            sites.Add(new OutlierSite(g.ProducerOf(hidden), hidden, qkvNames, NodeOrNull(g, residual, hidden)));
            var context = Blocks.Attend(g, heads[0], heads[1], heads[2], allowed, o, $"{layer}/attention/self");
            var attnNorm = SubLayerNorm(g, w, o, context, residual, $"{role}.attention.output", $"{layer}/attention/output", o.Hidden, o.Hidden, scaled: true, out var attnFactors);

            string fc1Name = $"{layer}/intermediate/dense/MatMul";
            var fc1 = Linear(g, w, attnNorm, $"{role}.intermediate.dense", fc1Name, o.Hidden, o.Intermediate, attnFactors);
            var mlpResidual = ResidualBranch(g, attnNorm, attnFactors, $"{layer}/output/residual");
            sites.Add(new OutlierSite(g.ProducerOf(attnNorm), attnNorm, new[] { fc1Name }, NodeOrNull(g, mlpResidual, attnNorm)));
            var gelu = Gelu(g, fc1, $"{layer}/intermediate/intermediate_act_fn");
            bool last = i == o.Layers - 1;
            hidden = SubLayerNorm(g, w, o, gelu, mlpResidual, $"{role}.output", $"{layer}/output", o.Intermediate, o.Hidden, scaled: !last,
                out factors, outputName: last ? "last_hidden_state" : null);
        }
        g.Output("last_hidden_state", "batch", "sequence", o.Hidden);

        var first = g.Op("Gather", "/pooler/Gather", new[] { hidden, g.Int64Scalar("/pooler/Constant_first", 0) }, attributes: n => n.With("axis", 1L))[0];
        var dense = g.Op("Gemm", "/pooler/dense/Gemm", new[] { first, w.LinearTransposed("pooler.dense.weight", "pooler.dense", o.Hidden, o.Hidden),
            w.Bias("pooler.dense.bias", "pooler.dense.bias", o.Hidden) }, attributes: n => n.With("alpha", 1f).With("beta", 1f).With("transB", 1L))[0];
        g.Op("Tanh", "/pooler/activation/Tanh", new[] { dense }, outputNames: new[] { "pooler_output" });
        g.Output("pooler_output", "batch", o.Hidden);
        return sites;
    }

    /// <summary>Word + token-type + position embeddings of input_ids, and the key mask from attention_mask.</summary>
    private static (string Summed, string? Allowed) TokenEmbeddings(GraphBuilder g, FixtureWeights w, FixtureOptions o)
    {
        var ids = g.Input("input_ids", DataType.Int64, "batch", "sequence");
        var mask = g.Input("attention_mask", DataType.Int64, "batch", "sequence");
        var types = g.Input("token_type_ids", DataType.Int64, "batch", "sequence");
        var words = g.Op1("Gather", "/embeddings/word_embeddings/Gather", w.Embedding("embeddings.word_embeddings.weight", "word_embeddings", o.Vocab, o.Hidden), ids);
        var tokenTypes = g.Op1("Gather", "/embeddings/token_type_embeddings/Gather", w.Embedding("embeddings.token_type_embeddings.weight", "token_type_embeddings", 2, o.Hidden), types);
        var positions = Positions(g, w, o, ids);
        return (g.Op1("Add", "/embeddings/Add", g.Op1("Add", "/embeddings/Add", words, tokenTypes), positions), Blocks.KeyMask(g, mask, "/extended_attention_mask"));
    }

    /// <summary>A ViT's embedding: float pixel_values [batch, patches, Vocab values per patch] projected to Hidden, plus positions; no mask.</summary>
    private static (string Summed, string? Allowed) PatchEmbeddings(GraphBuilder g, FixtureWeights w, FixtureOptions o)
    {
        var pixels = g.Input("pixel_values", g.FloatType, "batch", "patches", o.Vocab);
        var patches = Linear(g, w, pixels, "embeddings.patch_embeddings.projection", "/embeddings/patch_embeddings/projection/MatMul", o.Vocab, o.Hidden);
        return (g.Op1("Add", "/embeddings/Add", patches, Positions(g, w, o, pixels)), null);
    }

    private static string Positions(GraphBuilder g, FixtureWeights w, FixtureOptions o, string input)
    {
        var seqLen = Blocks.Dim(g, input, 1, "/embeddings");
        var range = g.Op("Range", "/embeddings/Range", new[] { g.Int64Scalar("/embeddings/Constant_zero", 0), seqLen, g.Int64Scalar("/embeddings/Constant_one", 1) },
            outputType: DataType.Int64)[0];
        return g.Op1("Gather", "/embeddings/position_embeddings/Gather", w.Embedding("embeddings.position_embeddings.weight", "position_embeddings", o.MaxPositions, o.Hidden), range);
    }

    private static string? NodeOrNull(GraphBuilder g, string residual, string normOutput) => residual == normOutput ? null : g.ProducerOf(residual);

    /// <summary>MatMul(x, W) + bias, named like optimum's export (<c>.../dense/MatMul</c>, <c>.../dense/Add</c>).</summary>
    private static string Linear(GraphBuilder g, FixtureWeights w, string x, string role, string matmulName, int rows, int cols, float[]? rowFactors = null)
    {
        var product = Blocks.MatMul(g, x, w.Linear($"{role}.weight", role, rows, cols, rowFactors), matmulName);
        return g.Op1("Add", matmulName[..matmulName.LastIndexOf('/')] + "/Add", product, w.Bias($"{role}.bias", $"{role}.bias", cols));
    }

    /// <summary>The norm output as the residual: itself, or its outlier channels scaled back down.</summary>
    private static string ResidualBranch(GraphBuilder g, string normOutput, float[]? factors, string prefix)
    {
        if (factors is null)
            return normOutput;
        var inverse = factors.Select(f => 1f / f).ToArray();
        return g.Op1("Mul", $"{prefix}/Mul", normOutput, g.Weight($"{prefix}/Constant_rescale", inverse, new long[] { inverse.Length }));
    }

    /// <summary>x * 0.5 * (1 + Erf(x / sqrt 2)), in torch's export order.</summary>
    private static string Gelu(GraphBuilder g, string x, string prefix)
    {
        var div = g.Op1("Div", $"{prefix}/Div", x, g.Scalar($"{prefix}/Constant_sqrt2", MathF.Sqrt(2f)));
        var erf = g.Op1("Erf", $"{prefix}/Erf", div);
        var plusOne = g.Op1("Add", $"{prefix}/Add", erf, g.Scalar($"{prefix}/Constant_one", 1f));
        var times = g.Op1("Mul", $"{prefix}/Mul", x, plusOne);
        return g.Op1("Mul", $"{prefix}/Mul", times, g.Scalar($"{prefix}/Constant_half", 0.5f));
    }

    /// <summary>
    /// dense(x) + residual, normalized: an explicit Add then LayerNormalization / decomposed LN, or one
    /// SkipLayerNormalization(input = MatMul output, skip = residual, gamma, beta, bias = dense bias).
    /// </summary>
    private static string SubLayerNorm(GraphBuilder g, FixtureWeights w, FixtureOptions o, string x, string residual, string role, string prefix,
        int rows, int cols, bool scaled, out float[]? factors, string? outputName = null)
    {
        string dense = $"{role}.dense";
        if (o.BertNorm == BertNormStyle.SkipLayerNormalization)
        {
            var product = Blocks.MatMul(g, x, w.Linear($"{dense}.weight", dense, rows, cols), $"{prefix}/dense/MatMul");
            var bias = w.Bias($"{dense}.bias", $"{dense}.bias", cols);
            var gamma = w.Gamma($"{role}.LayerNorm.weight", $"{role}.LayerNorm", scaled, out factors);
            var beta = w.Beta($"{role}.LayerNorm.bias", $"{role}.LayerNorm.bias", factors);
            return g.Op("SkipLayerNormalization", $"{prefix}/LayerNorm/SkipLayerNorm", new[] { product, residual, gamma, beta, bias },
                domain: Nodes.MicrosoftDomain, attributes: n => n.With("epsilon", o.Epsilon),
                outputNames: outputName is null ? null : new[] { outputName })[0];
        }
        var projected = Linear(g, w, x, dense, $"{prefix}/dense/MatMul", rows, cols);
        var sum = g.Op1("Add", $"{prefix}/Add", projected, residual);
        return FullNorm(g, w, o, sum, $"{role}.LayerNorm", $"{prefix}/LayerNorm", scaled, out factors, outputName);
    }

    /// <summary>A LayerNorm of an already summed input: LayerNormalization, or decomposed.</summary>
    private static string FullNorm(GraphBuilder g, FixtureWeights w, FixtureOptions o, string x, string role, string prefix, bool scaled,
        out float[]? factors, string? outputName = null)
    {
        var gamma = w.Gamma($"{role}.weight", role, scaled, out factors);
        var beta = w.Beta($"{role}.bias", $"{role}.bias", factors);
        if (o.BertNorm == BertNormStyle.Decomposed)
            return Blocks.LayerNormDecomposed(g, x, gamma, beta, o, prefix, outputName);
        return g.Op("LayerNormalization", $"{prefix}/LayerNormalization", new[] { x, gamma, beta },
            attributes: n => n.With("axis", -1L).With("epsilon", o.Epsilon),
            outputNames: outputName is null ? null : new[] { outputName })[0];
    }
}

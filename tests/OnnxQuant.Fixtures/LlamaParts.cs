namespace OnnxQuant.Fixtures;

/// <summary>
/// The pieces both Llama families share: bias-free q/k/v projections split into heads, the SwiGLU MLP and the lm_head.
/// Weights draw from the same roles in both families, so equal seeds give the same numbers in either style.
/// </summary>
internal static class LlamaParts
{
    /// <summary>Names an initializer: (role such as <c>layers.0.q_proj</c>) -> initializer name.</summary>
    public delegate string WeightNamer(string role);

    public sealed record Qkv(string Q, string K, string V, string[] Consumers);

    /// <summary>
    /// q/k/v = MatMul(x, W[in, out]) split into [b, heads, s, d] (k and v have <see cref="FixtureOptions.KvHeadCount"/>
    /// heads), or left [b, s, heads · d] without <paramref name="split"/>; weight rows divided by x's norm factors.
    /// </summary>
    public static Qkv Projections(GraphBuilder g, FixtureWeights w, string x, float[]? rowFactors, FixtureOptions o, int layer, string attnPrefix, WeightNamer name,
        bool split = true)
    {
        var heads = new string[3];
        var consumers = new string[3];
        string[] projections = { "q_proj", "k_proj", "v_proj" };
        for (int p = 0; p < 3; p++)
        {
            string role = $"layers.{layer}.{projections[p]}";
            consumers[p] = $"{attnPrefix}/{projections[p]}/MatMul";
            int count = p == 0 ? o.Heads : o.KvHeadCount;
            var weight = w.Linear(name(role), role, o.Hidden, count * o.HeadDim, rowFactors);
            var projected = Blocks.MatMul(g, x, weight, consumers[p]);
            heads[p] = split ? Blocks.SplitHeads(g, projected, o, attnPrefix, count) : projected;
        }
        return new Qkv(heads[0], heads[1], heads[2], consumers);
    }

    /// <summary>One packed MatMul whose output is q | k | v along the last axis ([b, s, (H + 2 kvH) · d]), as the model builder packs them.</summary>
    public static string PackedProjection(GraphBuilder g, FixtureWeights w, string x, float[]? rowFactors, FixtureOptions o, int layer, string attnPrefix,
        WeightNamer name, out string consumer)
    {
        string role = $"layers.{layer}.qkv_proj";
        consumer = $"{attnPrefix}/qkv_proj/MatMul";
        var weight = w.Linear(name(role), role, o.Hidden, (o.Heads + 2 * o.KvHeadCount) * o.HeadDim, rowFactors);
        return Blocks.MatMul(g, x, weight, consumer);
    }

    /// <summary>o_proj: MatMul of the merged attention context.</summary>
    public static string OutputProjection(GraphBuilder g, FixtureWeights w, string context, FixtureOptions o, int layer, string attnPrefix, WeightNamer name)
    {
        string role = $"layers.{layer}.o_proj";
        return Blocks.MatMul(g, context, w.Linear(name(role), role, o.Hidden, o.Hidden), $"{attnPrefix}/o_proj/MatMul");
    }

    /// <summary>
    /// SwiGLU: <c>down(Mul(Mul(gate, Sigmoid(gate)), up))</c> with gate/up reading x's outlier rows. Returns the
    /// down_proj output; <paramref name="consumers"/> gets the gate and up MatMul names.
    /// </summary>
    public static string SwiGlu(GraphBuilder g, FixtureWeights w, string x, float[]? rowFactors, FixtureOptions o, int layer, string mlpPrefix, WeightNamer name, out string[] consumers)
    {
        string gateRole = $"layers.{layer}.gate_proj", upRole = $"layers.{layer}.up_proj", downRole = $"layers.{layer}.down_proj";
        consumers = new[] { $"{mlpPrefix}/gate_proj/MatMul", $"{mlpPrefix}/up_proj/MatMul" };
        var gate = Blocks.MatMul(g, x, w.Linear(name(gateRole), gateRole, o.Hidden, o.Intermediate, rowFactors), consumers[0]);
        var up = Blocks.MatMul(g, x, w.Linear(name(upRole), upRole, o.Hidden, o.Intermediate, rowFactors), consumers[1]);
        var sigmoid = g.Op1("Sigmoid", $"{mlpPrefix}/act_fn/Sigmoid", gate);
        var silu = g.Op1("Mul", $"{mlpPrefix}/act_fn/Mul", gate, sigmoid);
        var product = g.Op1("Mul", $"{mlpPrefix}/Mul", silu, up);
        var down = w.Linear(name(downRole), downRole, o.Intermediate, o.Hidden);
        return Blocks.MatMul(g, product, down, $"{mlpPrefix}/down_proj/MatMul");
    }

    /// <summary><c>/lm_head/MatMul</c> -> graph output <c>logits</c> [batch, sequence, vocab].</summary>
    public static string LmHead(GraphBuilder g, FixtureWeights w, string x, float[]? rowFactors, FixtureOptions o, WeightNamer name, string seqDim)
    {
        var weight = w.Linear(name("lm_head"), "lm_head", o.Hidden, o.Vocab, rowFactors);
        g.Op("MatMul", "/lm_head/MatMul", new[] { x, weight }, outputNames: new[] { "logits" });
        g.Output("logits", "batch", seqDim, o.Vocab);
        return "logits";
    }
}

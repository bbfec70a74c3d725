using Onnx;
using OnnxQuant.IR;

namespace OnnxQuant.Analysis;

/// <summary>What a model computes, as far as measuring it on text goes.</summary>
public enum ModelTask
{
    /// <summary>Next-token logits over the vocabulary under a causal mask: perplexity and top-1 agreement.</summary>
    CausalLm,
    /// <summary>Hidden states of every token (no causal mask, or no vocabulary output): mean-pooled and compared by cosine.</summary>
    Encoder,
}

/// <summary>The task, the output to measure (null when the graph has none that fits) and why, in words for a notice.</summary>
public sealed record TaskVerdict(ModelTask Task, string? Output, string Evidence);

/// <summary>
/// Decides causal LM or encoder from the graph's structure, not from output names (exports call the logits `logits`,
/// `output`, `lm_logits`, ...): a causal LM has an output whose last dimension is the vocabulary — the rows of the table
/// the token ids index, read from the output's shape or from the N of the linear that produces it — and a causal mask.
/// See docs/architecture.md, "Task from structure".
/// </summary>
public static class ModelTaskDetection
{
    public static TaskVerdict Detect(Graph graph, ModelTask? forced = null)
    {
        var vocabulary = EmbeddingRows(graph);
        string? vocabOutput = graph.Outputs.Select(o => o.Name).FirstOrDefault(o => LastDimension(graph, o) is { } n && vocabulary.Contains(n));
        string? causal = CausalEvidence(graph);
        string? hidden = graph.Outputs.Select(o => o.Name).FirstOrDefault(o => o != vocabOutput && Rank(graph, o) == 3);
        if (forced == ModelTask.CausalLm)
            return new TaskVerdict(ModelTask.CausalLm, vocabOutput ?? graph.Outputs.Select(o => o.Name).FirstOrDefault(o => Rank(graph, o) is 3 or null), "--task causal-lm");
        if (forced == ModelTask.Encoder)
            return new TaskVerdict(ModelTask.Encoder, hidden ?? vocabOutput, "--task encoder");
        if (vocabOutput is not null && causal is not null)
            return new TaskVerdict(ModelTask.CausalLm, vocabOutput,
                $"output '{vocabOutput}' is over the {LastDimension(graph, vocabOutput)}-token vocabulary and attention is causal ({causal})");
        string why = vocabOutput is null
            ? "no output is over the vocabulary of the token embedding"
            : $"output '{vocabOutput}' is over the vocabulary but attention is not causal (a masked-LM head)";
        // A classifier's [batch, classes] output is still something to compare (a ViT fed arrays).
        return new TaskVerdict(ModelTask.Encoder, hidden ?? vocabOutput ?? graph.Outputs.FirstOrDefault()?.Name, why);
    }

    // Rows of every rank-2 constant table a Gather indexes with (a cast of) an integer graph input: the token embedding.
    // The table may reach the Gather through exact steps on one constant, as a head tied through Gather(Transpose(W)) does.
    private static HashSet<long> EmbeddingRows(Graph graph)
    {
        var rows = new HashSet<long>();
        foreach (var gather in graph.Nodes.Where(n => n.IsOnnx("Gather") && n.Input.Count == 2))
        {
            string indices = graph.StripCasts(gather.Input[1]);
            if (!graph.IsGraphInput(indices) || WeightChain.Resolve(graph, gather.Input[0]).Chain is not { Shape.Count: 2 } table)
                continue;
            rows.Add(table.Shape[0]);
        }
        return rows;
    }

    // The output's static last dimension, else the N of the linear (MatMul/Gemm or MatMulNBits) that writes it through Casts/Identities.
    private static long? LastDimension(Graph graph, string output)
    {
        var dims = Dims(graph, output);
        if (dims is { Count: > 0 } && dims[^1].HasDimValue && dims[^1].DimValue > 0)
            return dims[^1].DimValue;
        string value = output;
        for (int hops = 0; hops < 4; hops++)
        {
            var producer = graph.Producer(value);
            if (producer is null)
                return null;
            if (producer.IsOnnx("Cast") || producer.IsOnnx("Identity"))
            {
                value = producer.Input[0];
                continue;
            }
            if (producer.IsOnnx("Add") && graph.TrySplitConstantOperand(producer, out _, out string other))
            {
                value = other;
                continue;
            }
            if (producer.IsMicrosoft("MatMulNBits"))
                return producer.GetInt("N", 0) is > 0 and var n ? n : null;
            return LinearAnalysis.IsLinearOp(producer) ? LinearNode.TryCreate(graph, producer)?.N : null;
        }
        return null;
    }

    private static int? Rank(Graph graph, string output) => Dims(graph, output)?.Count;

    private static IReadOnlyList<TensorShapeProto.Types.Dimension>? Dims(Graph graph, string output)
    {
        var info = graph.Outputs.First(o => o.Name == output);
        return info.Type?.TensorType?.Shape is { } shape ? shape.Dim : null;
    }

    /// <summary>A short description of what makes attention causal, or null when nothing does.</summary>
    private static string? CausalEvidence(Graph graph)
    {
        foreach (var node in graph.Nodes)
        {
            if (node.IsOnnx("Trilu"))
                return "a Trilu mask";
            if (node.IsMicrosoft("GroupQueryAttention"))
                return "GroupQueryAttention";
            if ((node.IsMicrosoft("Attention") || node.IsMicrosoft("MultiHeadAttention")) && node.GetInt("unidirectional", 0) == 1)
                return $"{node.OpType} unidirectional";
            if (node.IsOnnx("Attention") && node.GetInt("is_causal", 0) == 1)
                return "Attention is_causal";
            if (node.OpType is "Less" or "LessOrEqual" or "Greater" or "GreaterOrEqual" && node.Input.All(i => FromRange(graph, i, 0)))
                return $"{node.OpType} of key and query positions";
        }
        if (graph.Inputs.Any(i => i.Name.StartsWith("past", StringComparison.OrdinalIgnoreCase)))
            return "a key/value cache input";
        foreach (var (name, tensor) in graph.Initializers)
            if (IsLowerTriangularMask(tensor))
                return $"the lower-triangular mask '{name}'";
        // Without attention (or a convolution or recurrence) no position sees another: trivially causal, like a bigram LM.
        bool mixes = graph.Nodes.Any(n => n.OpType.Contains("Attention", StringComparison.Ordinal) || n.OpType is "Conv" or "LSTM" or "GRU" or "RNN" or "Scan" or "Loop")
            || LinearAnalysis.Analyze(graph, new LinearSelection()).All.Any(c => c.Reason == KeepReason.ComputedWeight);
        return mixes ? null : "nothing mixes positions";
    }

    // Positions are a Range, possibly reshaped, cast or shifted on the way to the comparison.
    private static bool FromRange(Graph graph, string value, int depth)
    {
        if (depth > 6 || graph.Producer(value) is not { } producer)
            return false;
        if (producer.IsOnnx("Range"))
            return true;
        return producer.OpType is "Unsqueeze" or "Reshape" or "Cast" or "Add" or "Sub" or "Expand" or "Identity"
            && FromRange(graph, producer.Input[0], depth + 1);
    }

    // torch's GPT-2-style buffers: a square [.., L, L] table whose entries on and below the diagonal differ from those above.
    private static bool IsLowerTriangularMask(Tensor tensor)
    {
        if (tensor.Shape.Count < 2 || tensor.Shape[^1] != tensor.Shape[^2] || tensor.Shape[^1] < 2 || tensor.ElementCount > (1 << 24)
            || tensor.ElementCount != tensor.Shape[^1] * tensor.Shape[^1])
            return false;
        if (tensor.DataType is not (TensorProto.Types.DataType.Bool or TensorProto.Types.DataType.Uint8 or TensorProto.Types.DataType.Float))
            return false;
        float[] values = tensor.DataType == TensorProto.Types.DataType.Float ? tensor.ToFloats() : tensor.RawBytes.ToArray().Select(b => (float)b).ToArray();
        int l = (int)tensor.Shape[^1];
        float below = values[0], above = values[1];
        if (below == above)
            return false;
        for (int i = 0; i < l; i++)
            for (int j = 0; j < l; j++)
                if (values[i * l + j] != (j <= i ? below : above))
                    return false;
        return true;
    }
}

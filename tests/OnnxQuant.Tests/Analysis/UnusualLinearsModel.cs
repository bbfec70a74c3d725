using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;
using Tensor = OnnxQuant.IR.Tensor;

namespace OnnxQuant.Tests.Analysis;

/// <summary>
/// A small causal-LM-shaped model whose linears reach their weights the ways real exports write them: fp16 and bf16
/// storage through Cast, a transposed weight, a [1, K, N] weight reshaped and one squeezed, an If body with a linear on
/// an outer value and one on a value the body computes, attention-like products of two activations, and an LM head tied
/// to the token embedding through Transpose. Input "input_ids" [batch, seq], output "logits" [batch, seq, vocab].
/// </summary>
internal static class UnusualLinearsModel
{
    public const int Vocab = 64, Hidden = 32;

    /// <summary>The MatMul nodes by name, main graph then the If body (10 in all).</summary>
    public static readonly string[] MainLinears =
        ["fp16_cast", "bf16_cast", "transposed", "reshaped", "squeezed", "scores", "context", "lm_head_tied"];

    public static readonly string[] BodyLinears = ["body_outer", "body_inner"];

    public static ModelProto Build()
    {
        var s = new GraphSketch();
        var random = new Random(11);
        float[] Values(int count, float scale) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1) * scale).ToArray();
        float w = 1f / MathF.Sqrt(Hidden);

        s.Add(Tensor.FromFloats("embed_tokens.weight", Values(Vocab * Hidden, 1f), [Vocab, Hidden]));
        s.Node("Gather", ["embed_tokens.weight", "input_ids"], ["x"], "embed");

        s.Add(Tensor.FromFloats("w_fp16", Values(Hidden * Hidden, w), [Hidden, Hidden], TensorProto.Types.DataType.Float16));
        Cast(s, "w_fp16", "w_fp16_f");
        s.Node("MatMul", ["x", "w_fp16_f"], ["h1"], "fp16_cast");

        s.Add(Tensor.FromFloats("w_bf16", Values(Hidden * Hidden, w), [Hidden, Hidden], TensorProto.Types.DataType.Bfloat16));
        Cast(s, "w_bf16", "w_bf16_f");
        s.Node("MatMul", ["h1", "w_bf16_f"], ["h2"], "bf16_cast");

        s.Add(Tensor.FromFloats("w_nk", Values(Hidden * Hidden, w), [Hidden, Hidden]));
        s.Node("Transpose", ["w_nk"], ["w_nk_t"], "w_nk/Transpose").With("perm", new long[] { 1, 0 });
        s.Node("MatMul", ["h2", "w_nk_t"], ["h3"], "transposed");

        s.Add(Tensor.FromFloats("w_batched", Values(Hidden * Hidden, w), [1, Hidden, Hidden]));
        s.Add(Tensor.FromInt64s("kn_shape", [Hidden, -1], [2]));
        s.Node("Reshape", ["w_batched", "kn_shape"], ["w_batched_kn"], "w_batched/Reshape");
        s.Node("MatMul", ["h3", "w_batched_kn"], ["h4"], "reshaped");

        s.Add(Tensor.FromFloats("w_batched2", Values(Hidden * Hidden, w), [1, Hidden, Hidden]));
        s.Add(Tensor.FromInt64s("axis0", [0], [1]));
        s.Node("Squeeze", ["w_batched2", "axis0"], ["w_squeezed"], "w_batched2/Squeeze");
        s.Node("MatMul", ["h4", "w_squeezed"], ["h5"], "squeezed");

        // An If whose condition depends on the data (so no optimizer folds it away) but is always true.
        s.Node("ReduceMax", ["h5"], ["h5_max"], "cond/ReduceMax").With("keepdims", 0L);
        s.Add(Tensor.FromFloats("very_low", [-1e30f], []));
        s.Node("Greater", ["h5_max", "very_low"], ["cond"], "cond/Greater");
        s.Add(Tensor.FromFloats("w_body_outer", Values(Hidden * Hidden, w), [Hidden, Hidden]));
        var then = new GraphProto { Name = "then" };
        then.Node.Add(Nodes.Create("MatMul", ["h5", "w_body_outer"], ["b1"], "body_outer"));
        then.Node.Add(Nodes.Create("Relu", ["b1"], ["b1r"], "body_relu"));
        then.Initializer.Add(TensorProtoWriter.Inline(Tensor.FromFloats("w_body_inner", Values(Hidden * Hidden, w), [Hidden, Hidden])));
        then.Node.Add(Nodes.Create("MatMul", ["b1r", "w_body_inner"], ["b2"], "body_inner"));
        then.Output.Add(GraphSketch.Value("b2", TensorProto.Types.DataType.Float, "batch", "seq", Hidden));
        var otherwise = new GraphProto { Name = "else" };
        otherwise.Node.Add(Nodes.Create("Identity", ["h5"], ["e1"], "else_identity"));
        otherwise.Output.Add(GraphSketch.Value("e1", TensorProto.Types.DataType.Float, "batch", "seq", Hidden));
        var ifNode = s.Node("If", ["cond"], ["h6"], "branch");
        ifNode.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = then });
        ifNode.Attribute.Add(new AttributeProto { Name = "else_branch", Type = AttributeProto.Types.AttributeType.Graph, G = otherwise });

        // Attention-like: both operands computed, nothing constant to quantize.
        s.Node("Transpose", ["h6"], ["h6_t"], "h6/Transpose").With("perm", new long[] { 0, 2, 1 });
        s.Node("MatMul", ["h6", "h6_t"], ["raw_scores"], "scores");
        s.Add(Tensor.FromFloats("score_scale", [0.01f], []));
        s.Node("Mul", ["raw_scores", "score_scale"], ["scaled_scores"], "scores/Scale");
        s.Node("Softmax", ["scaled_scores"], ["probs"], "scores/Softmax").With("axis", -1L);
        s.Node("MatMul", ["probs", "h6"], ["context_out"], "context");
        s.Node("Add", ["context_out", "h6"], ["h7"], "residual");

        // The head tied to the embedding: its weight is the table transposed.
        s.Node("Transpose", ["embed_tokens.weight"], ["embed_t"], "embed/Transpose").With("perm", new long[] { 1, 0 });
        s.Node("MatMul", ["h7", "embed_t"], ["logits"], "lm_head_tied");

        var model = s.ToModel(17);
        model.Graph.Input.Add(new ValueInfoProto
        {
            Name = "input_ids",
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Int64, Shape = Shape("batch", "seq") } },
        });
        model.Graph.Output.Add(GraphSketch.Value("logits", TensorProto.Types.DataType.Float, "batch", "seq", Vocab));
        return model;
    }

    private static void Cast(GraphSketch s, string input, string output) =>
        s.Node("Cast", [input], [output], $"{input}/Cast").With("to", (long)TensorProto.Types.DataType.Float);

    private static TensorShapeProto Shape(params string[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = d });
        return shape;
    }
}

using Onnx;
using OnnxQuant.IO;
using OnnxQuant.IR;
using DataType = Onnx.TensorProto.Types.DataType;

namespace OnnxQuant.Fixtures;

/// <summary>Where a Llama fixture puts linears inside control-flow bodies, as some exports do (docs/architecture.md, "Linear analysis").</summary>
public enum SubgraphShape
{
    None,
    /// <summary>Every layer's q_proj in both branches of an <c>If</c> that reads the attention norm's output.</summary>
    IfQueryProjection,
    /// <summary>Every layer's down_proj in both branches of an <c>If</c> that reads the SwiGLU product.</summary>
    IfDownProjection,
    /// <summary>Every layer's q_proj in the body of a one-trip <c>Loop</c> (a scan output, squeezed back).</summary>
    LoopQueryProjection,
}

/// <summary>
/// Moves named MatMuls of a built Llama fixture into If/Loop bodies and ties the embedding to the head. The weight
/// stays a main-graph initializer the bodies read, and the model computes the same function.
/// </summary>
internal static class SubgraphShapes
{
    public static void Apply(GraphProto graph, FixtureOptions o, DataType floatType)
    {
        string? role = o.Subgraphs switch
        {
            SubgraphShape.IfQueryProjection or SubgraphShape.LoopQueryProjection => "self_attn/q_proj",
            SubgraphShape.IfDownProjection => "mlp/down_proj",
            _ => null,
        };
        if (role is not null)
        {
            string cond = Condition(graph);
            for (int i = 0; i < o.Layers; i++)
            {
                string name = $"/model/layers.{i}/{role}/MatMul";
                var matmul = graph.Node.Single(n => n.Name == name);
                int at = graph.Node.IndexOf(matmul);
                graph.Node.RemoveAt(at);
                var replacement = o.Subgraphs == SubgraphShape.LoopQueryProjection
                    ? InLoop(matmul, floatType, $"/model/layers.{i}/{role}")
                    : [InIf(matmul, cond, floatType, $"/model/layers.{i}/{role}")];
                for (int r = 0; r < replacement.Count; r++)
                    graph.Node.Insert(at + r, replacement[r]);
            }
        }
        if (o.TiedHeadTransposed)
            TieEmbeddingToHead(graph);
    }

    // Always true, but computed from the data, so no optimizer folds the If away: min(input_ids) > -1.
    private static string Condition(GraphProto graph)
    {
        graph.Initializer.Add(TensorProtoWriter.Inline(Tensor.FromInt64s("/model/branch/minus_one", [-1], [])));
        graph.Node.Insert(0, Nodes.Create("ReduceMin", ["input_ids"], ["/model/branch/min_id"], "/model/branch/ReduceMin").With("keepdims", 0L));
        graph.Node.Insert(1, Nodes.Create("Greater", ["/model/branch/min_id", "/model/branch/minus_one"], ["/model/branch/cond"], "/model/branch/Greater"));
        return "/model/branch/cond";
    }

    private static NodeProto InIf(NodeProto matmul, string cond, DataType type, string prefix)
    {
        GraphProto Branch(string which)
        {
            var body = new GraphProto { Name = $"{prefix}/{which}" };
            string output = $"{matmul.Output[0]}_{which}";
            body.Node.Add(Nodes.Create("MatMul", matmul.Input, [output], matmul.Name));
            body.Output.Add(Value(output, type));
            return body;
        }
        var node = Nodes.Create("If", [cond], matmul.Output, $"{prefix}/If");
        node.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = Branch("then") });
        node.Attribute.Add(new AttributeProto { Name = "else_branch", Type = AttributeProto.Types.AttributeType.Graph, G = Branch("else") });
        return node;
    }

    private static List<NodeProto> InLoop(NodeProto matmul, DataType type, string prefix)
    {
        var body = new GraphProto { Name = $"{prefix}/loop_body" };
        body.Input.Add(Scalar($"{prefix}/iteration", DataType.Int64));
        body.Input.Add(Scalar($"{prefix}/cond_in", DataType.Bool));
        body.Node.Add(Nodes.Create("Identity", [$"{prefix}/cond_in"], [$"{prefix}/cond_out"], $"{prefix}/cond_out"));
        string scan = $"{matmul.Output[0]}_scan";
        body.Node.Add(Nodes.Create("MatMul", matmul.Input, [scan], matmul.Name));
        body.Output.Add(Scalar($"{prefix}/cond_out", DataType.Bool));
        body.Output.Add(Value(scan, type));
        string trips = $"{prefix}/trips", axes = $"{prefix}/axes", stacked = $"{matmul.Output[0]}_stacked";
        var loop = Nodes.Create("Loop", [trips, ""], [stacked], $"{prefix}/Loop");
        loop.Attribute.Add(new AttributeProto { Name = "body", Type = AttributeProto.Types.AttributeType.Graph, G = body });
        return
        [
            Nodes.Create("Constant", [], [trips], $"{prefix}/trips").With("value", TensorProtoWriter.Inline(Tensor.FromInt64s(trips, [1], []))),
            Nodes.Create("Constant", [], [axes], $"{prefix}/axes").With("value", TensorProtoWriter.Inline(Tensor.FromInt64s(axes, [0], [1]))),
            loop,
            Nodes.Create("Squeeze", [stacked, axes], matmul.Output, $"{prefix}/Squeeze"),
        ];
    }

    // The embedding becomes Gather(Transpose(W_head)): one [hidden, vocab] table read by the head and, transposed, by the lookup.
    private static void TieEmbeddingToHead(GraphProto graph)
    {
        var head = graph.Node.Single(n => n.Name == "/lm_head/MatMul");
        var gather = graph.Node.Single(n => n.Name == "/model/embed_tokens/Gather");
        string table = gather.Input[0], transposed = "/model/embed_tokens/tied_table";
        graph.Initializer.Remove(graph.Initializer.Single(t => t.Name == table));
        int at = graph.Node.IndexOf(gather);
        graph.Node.Insert(at, Nodes.Create("Transpose", [head.Input[1]], [transposed], "/model/embed_tokens/Transpose").With("perm", new long[] { 1, 0 }));
        gather.Input[0] = transposed;
    }

    private static ValueInfoProto Value(string name, DataType type) =>
        new() { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type } } };

    private static ValueInfoProto Scalar(string name, DataType type) =>
        new() { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = new TensorShapeProto() } } };
}

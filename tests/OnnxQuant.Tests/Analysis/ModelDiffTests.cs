using Onnx;
using OnnxQuant.Analysis;
using OnnxQuant.IO;
using OnnxQuant.IR;
using Tensor = OnnxQuant.IR.Tensor;

namespace OnnxQuant.Tests.Analysis;

public sealed class ModelDiffTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("onnxquant-diff-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>x -> MatMul(w1) -> Relu -> MatMul(w2) -> y, plus a dead Neg node; w1 is 16x16 so it goes to external data.</summary>
    internal static ModelProto SmallModel()
    {
        var s = new GraphSketch();
        s.Input("x", "batch", 16);
        s.Node("MatMul", ["x", s.Matrix("w1", 16, 16)], ["h"], "fc1");
        s.Node("Relu", ["h"], ["a"], "act");
        s.Node("MatMul", ["a", s.Matrix("w2", 16, 4)], ["y"], "fc2");
        s.Node("Neg", ["x"], ["unused_out"], "unused");
        s.Output("y", "batch", 4);
        return s.ToModel();
    }

    private string Save(ModelProto proto, string name)
    {
        string path = Path.Combine(_dir, name);
        using var model = OnnxModel.FromProto(proto);
        ModelFile.Save(model, path, new SaveOptions { ExternalThreshold = 512 });
        return path;
    }

    [Fact]
    public void AModelComparedWithItselfHasNoDifference()
    {
        string path = Save(SmallModel(), "m.onnx");
        using var a = ModelFile.Load(path);
        using var b = ModelFile.Load(path);

        var diff = ModelDiff.Compare(a, b);

        Assert.True(diff.IsEmpty);
        Assert.Equal((4, 4), (diff.NodesBefore, diff.NodesAfter));
        long onDisk = new FileInfo(path).Length + new FileInfo(path + ".data").Length;
        Assert.Equal(onDisk, diff.Before.TotalBytes);
        Assert.Equal(onDisk, diff.After.TotalBytes);
        Assert.Single(diff.Before.ExternalData);
    }

    [Fact]
    public void AKnownEditIsReportedExactly()
    {
        var before = SmallModel();
        var after = before.Clone();
        var g = after.Graph;
        g.Node.Single(n => n.Name == "act").OpType = "Sigmoid";                                // op renamed
        var w1 = Tensor.FromFloats("w1", Tensor.FromBytes("w1", TensorProto.Types.DataType.Float, [16, 16],
            g.Initializer.Single(t => t.Name == "w1").RawData.ToByteArray()).ToFloats().Select(v => v * 2).ToArray(), [16, 16]);
        int w1Index = g.Initializer.IndexOf(g.Initializer.Single(t => t.Name == "w1"));
        g.Initializer[w1Index] = TensorProtoWriter.Inline(w1);                                   // scaled by 2
        g.Node.Add(Nodes.Create("Abs", ["h"], ["probe_out"], "probe"));                          // inserted
        g.Node.Remove(g.Node.Single(n => n.Name == "unused"));                                    // removed
        after.OpsetImport.Add(new OperatorSetIdProto { Domain = "com.microsoft", Version = 1 });

        using var a = OnnxModel.FromProto(before);
        using var b = OnnxModel.FromProto(after);
        var diff = ModelDiff.Compare(a, b);

        Assert.Equal(("probe", "Abs"), (Assert.Single(diff.NodesAdded).Name, diff.NodesAdded[0].Op));
        Assert.Equal(("unused", "Neg"), (Assert.Single(diff.NodesRemoved).Name, diff.NodesRemoved[0].Op));
        var rewritten = Assert.Single(diff.NodesRewritten);
        Assert.Equal(("act", "Sigmoid", "Relu"), (rewritten.Name, rewritten.Op, rewritten.OpBefore));
        Assert.Equal(["op"], rewritten.Changed);

        var changed = Assert.Single(diff.InitializersChanged);
        Assert.Equal("w1", changed.Name);
        Assert.Equal(changed.Before, changed.After, new TensorInfoComparer()); // same dtype, shape, bytes: values only
        float maxAbs = a.Graph.GetInitializer("w1")!.ToFloats().Max(Math.Abs); // 2w - w = w
        Assert.Equal(maxAbs, changed.MaxAbsDifference!.Value, 6);
        Assert.Empty(diff.InitializersAdded);
        Assert.Empty(diff.InitializersRemoved);

        var opset = Assert.Single(diff.Opsets);
        Assert.Equal(("com.microsoft", (long?)null, (long?)1), (opset.Domain, opset.Before, opset.After));
        Assert.Empty(diff.GraphValues);
        Assert.False(diff.IsEmpty);
    }

    [Fact]
    public void DtypeChangesRewiredInputsAttributesAndGraphOutputsAreReported()
    {
        var before = SmallModel();
        var after = before.Clone();
        var g = after.Graph;
        var w2 = g.Initializer.Single(t => t.Name == "w2");
        var half = Tensor.FromFloats("w2", Tensor.FromBytes("w2", TensorProto.Types.DataType.Float, [16, 4], w2.RawData.ToByteArray()).ToFloats(),
            [16, 4], TensorProto.Types.DataType.Float16);
        g.Initializer[g.Initializer.IndexOf(w2)] = TensorProtoWriter.Inline(half);
        g.Initializer.Add(TensorProtoWriter.Inline(Tensor.FromFloats("extra", [1f, 2f], [2])));
        var fc2 = g.Node.Single(n => n.Name == "fc2");
        fc2.Input[0] = "h";                                              // rewired
        g.Node.Single(n => n.Name == "act").With("alpha", 0.1f);         // attribute added
        g.Output[0] = GraphSketch.Value("y", TensorProto.Types.DataType.Float16, "batch", 4);

        using var a = OnnxModel.FromProto(before);
        using var b = OnnxModel.FromProto(after);
        var diff = ModelDiff.Compare(a, b);

        var dtype = Assert.Single(diff.InitializersChanged);
        Assert.Equal(("float32", 256L, "float16", 128L), (dtype.Before!.Dtype, dtype.Before.Bytes, dtype.After!.Dtype, dtype.After.Bytes));
        Assert.Null(dtype.MaxAbsDifference);
        Assert.Equal(("extra", 8L), (Assert.Single(diff.InitializersAdded).Name, diff.InitializersAdded[0].After!.Bytes));
        Assert.Equal(
            [("act", "attributes"), ("fc2", "inputs")],
            diff.NodesRewritten.Select(n => (n.Name, string.Join(",", n.Changed))).OrderBy(x => x.Name));
        var output = Assert.Single(diff.GraphValues);
        Assert.Equal(("output", "y", "float32", "float16"), (output.Kind, output.Name, output.Before!.Dtype, output.After!.Dtype));
        Assert.Empty(diff.NodesAdded);
        Assert.Empty(diff.NodesRemoved);
    }

    private sealed class TensorInfoComparer : IEqualityComparer<TensorInfo?>
    {
        public bool Equals(TensorInfo? x, TensorInfo? y) =>
            x is not null && y is not null && x.Dtype == y.Dtype && x.Bytes == y.Bytes && x.Shape.SequenceEqual(y.Shape);

        public int GetHashCode(TensorInfo? obj) => obj?.Bytes.GetHashCode() ?? 0;
    }
}

using System.Text.RegularExpressions;
using Onnx;
using OnnxQuant.IR;
using OnnxQuant.Passes;
using OnnxQuant.Tests.Analysis;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Graphs;

/// <summary>Graph edits keep the producer/consumer indexes right, and the pipeline catches an edit that went around them.</summary>
public class GraphEditTests
{
    // x -> MatMul(w) -> y -> Relu -> z (output)
    private static Graph Small(out NodeProto matmul, out NodeProto relu)
    {
        var s = new GraphSketch();
        s.Input("x", "batch", 4);
        s.Matrix("w", 4, 4);
        s.Matrix("w2", 4, 4);
        matmul = s.Node("MatMul", ["x", "w"], ["y"], "mm");
        relu = s.Node("Relu", ["y"], ["z"], "relu");
        s.Output("z", "batch", 4);
        var graph = s.Build();
        Assert.Single(graph.Consumers("x")); // builds the index, so later edits must maintain it
        return graph;
    }

    [Fact]
    public void Every_edit_keeps_the_indexes_equal_to_fresh_ones()
    {
        var graph = Small(out var matmul, out var relu);
        graph.SetInput(matmul, 1, "w2");
        Assert.Empty(graph.Consumers("w"));
        Assert.Same(matmul, Assert.Single(graph.Consumers("w2")));

        var scale = graph.AddNode(Nodes.Create("Mul", ["y", "w2"], ["y2"], "scale"));
        graph.ReplaceInput(relu, "y", "y2");
        Assert.Same(scale, Assert.Single(graph.Consumers("y")));
        graph.RenameOutput(scale, 0, "y3");
        graph.ReplaceInput(relu, "y2", "y3");
        Assert.Same(scale, graph.Producer("y3"));
        Assert.Null(graph.Producer("y2"));

        var replacement = graph.ReplaceNode(matmul, Nodes.Create("Gemm", ["x", "w2"], ["y"]));
        Assert.Equal("mm", replacement.Name);
        Assert.Same(replacement, graph.Producer("y"));
        Assert.Empty(graph.IndexMismatches());
        Assert.Equal(0, graph.RemoveDeadNodes());
        Assert.Empty(graph.IndexMismatches());
    }

    [Fact]
    public void A_direct_node_edit_is_caught_by_the_index_check()
    {
        var graph = Small(out var matmul, out _);
        matmul.Input[1] = "w2"; // what passes must not do
        var problems = graph.IndexMismatches();
        Assert.Contains(problems, p => p.Contains("'w2'", StringComparison.Ordinal));

        var error = Assert.Throws<InvalidOperationException>(() =>
            new Pipeline().Add(new DirectEdit()).Run(LoadSmallModel(), new PassContext { CheckIndexes = true }));
        Assert.Contains("direct-edit", error.Message);
    }

    private static OnnxQuant.IO.OnnxModel LoadSmallModel()
    {
        var s = new GraphSketch();
        s.Input("x", "batch", 4);
        s.Matrix("w", 4, 4);
        s.Matrix("w2", 4, 4);
        s.Node("MatMul", ["x", "w"], ["z"], "mm");
        s.Output("z", "batch", 4);
        return OnnxQuant.IO.OnnxModel.FromProto(s.ToModel());
    }

    private sealed class DirectEdit : IGraphPass
    {
        public string Name => "direct-edit";

        public PassResult Run(OnnxQuant.IO.OnnxModel model, PassContext context)
        {
            var node = model.Graph.Nodes.Single();
            Assert.NotEmpty(model.Graph.Consumers("w"));
            node.Input[1] = "w2";
            return new PassResult(true, []);
        }
    }

    // The passes edit graphs only through Graph: no assignment to a node's inputs/outputs, no "changed" hook.
    [Fact]
    public void No_pass_writes_node_fields_directly()
    {
        string root = Path.Combine(CliHarness.RepoRoot(), "src", "OnnxQuant.Passes");
        var direct = new Regex(@"\.(Input|Output)\[[^\]]+\]\s*=(?!=)|\.NodeChanged\(|\.Name\s*=\s*linear", RegexOptions.CultureInvariant);
        var offenders = Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}IR{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}"))
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (f, i, line)))
            .Where(t => direct.IsMatch(t.line))
            .Select(t => $"{Path.GetRelativePath(root, t.f)}:{t.i + 1}: {t.line.Trim()}")
            .ToList();
        Assert.True(offenders.Count == 0, string.Join("\n", offenders));
        // The check can fail: the pattern finds the kind of line it forbids.
        Assert.Matches(direct, "reader.Input[i] = output;");
    }
}

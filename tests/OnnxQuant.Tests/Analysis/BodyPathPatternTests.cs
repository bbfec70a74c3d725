using OnnxQuant.Fixtures;
using OnnxQuant.Tests.W8A8;

namespace OnnxQuant.Tests.Analysis;

/// <summary>Issue 31, item 5: --exclude patterns match a body node's path as `inspect` prints it, not only its own name.</summary>
public class BodyPathPatternTests
{
    [Fact]
    public void A_pattern_on_the_inspect_path_keeps_only_that_branch()
    {
        using var model = FixtureModels.BuildModel(W8A8TestKit.OutlierLlama() with { Subgraphs = SubgraphShape.IfQueryProjection });
        var selection = new OnnxQuant.Analysis.LinearSelection(["/model/layers.0/self_attn/q_proj/If/then_branch/*"]);

        var table = OnnxQuant.Analysis.LinearAnalysis.Analyze(model.Graph, selection);

        var excluded = table.All.Where(c => c.Reason == OnnxQuant.Analysis.KeepReason.ExcludedByPattern).Select(c => c.QualifiedName).ToList();
        Assert.Equal(["/model/layers.0/self_attn/q_proj/If/then_branch//model/layers.0/self_attn/q_proj/MatMul"], excluded);
        // The else branch's twin (same node name) stays quantized.
        Assert.Equal(1, table.All.Count(c => c.Name == "/model/layers.0/self_attn/q_proj/MatMul" && c.Quantizable));
    }
}

using OnnxQuant.IO;
using OnnxQuant.Smoothing;
using OnnxQuant.Tests.W8A8;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Smoothing;

/// <summary>
/// models/austen-lm is a real torch.onnx export (RoPE, run-time reshape targets built from Shape/Gather/Concat): every
/// group folds without a new node, the o_proj and down_proj groups through their paths, and the logits do not move.
/// </summary>
public class RealModelFoldTests
{
    private static string AustenLm => Path.Combine(CliHarness.RepoRoot(), "models", "austen-lm", "model.onnx");

    [Fact]
    public void AustenLmFoldsEveryGroupAndKeepsItsLogits()
    {
        var windows = W8A8TestKit.Tokens(4096, 1, 24, seed: 41);
        using var model = ModelFile.Load(AustenLm);
        var reference = W8A8TestKit.Run(W8A8TestKit.Serialize(model), windows);
        var groups = SmoothingGroups.Find(model.Graph);
        Assert.Equal(6 * 4 + 1, groups.Count);
        Assert.All(groups, g => Assert.NotEqual(FoldKind.InsertedMul, g.Producer.Kind));
        Assert.Equal(6, groups.Count(g => g.Producer is LinearColumnsFold { Pattern: "attention" }));
        Assert.Equal(6, groups.Count(g => g.Producer is LinearColumnsFold { Pattern: "gated Mul" }));

        var random = new Random(42);
        foreach (var g in groups)
            g.Apply(model.Graph, Enumerable.Range(0, g.Channels).Select(_ => (float)Math.Exp(random.NextDouble() * 4 - 2)).ToArray());
        double error = W8A8TestKit.RelativeError(reference, W8A8TestKit.Run(W8A8TestKit.Serialize(model), windows));
        Assert.True(error < 1e-5, $"relative logits error {error:E2} after folding random scales");
    }
}

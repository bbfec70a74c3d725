using Google.Protobuf;
using OnnxQuant.IR;
using OnnxQuant.Tests.Analysis;

namespace OnnxQuant.Tests.Cli;

public sealed class DiffCommandTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("onnxquant-diffcli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(Onnx.ModelProto model, string name)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, model.ToByteArray());
        return path;
    }

    [Fact]
    public void DiffOfAModelWithItselfReportsNoChange()
    {
        string path = Write(ModelDiffTests.SmallModel(), "m.onnx");

        var json = CliHarness.Run("diff", path, path, "--json", "--nodes");
        var text = CliHarness.Run("diff", path, path);

        Assert.Equal((0, ""), (json.ExitCode, json.Error));
        var root = json.Json().GetProperty("nodes");
        foreach (var list in new[] { "nodes_added", "nodes_removed", "nodes_rewritten", "initializers_added", "initializers_removed", "initializers_changed", "opsets", "graph_values" })
            Assert.Equal(0, root.GetProperty(list).GetArrayLength());
        Assert.True(root.GetProperty("is_empty").GetBoolean());
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("no differences", text.Out);
    }

    [Fact]
    public void DiffGroupsManyNewNodesByOpAndCutsLongLists()
    {
        var before = ModelDiffTests.SmallModel();
        var after = before.Clone();
        for (int i = 0; i < 9; i++)
            after.Graph.Node.Add(Nodes.Create("Identity", ["h"], [$"copy{i}"], $"copy_{i}"));
        after.Graph.Node.Single(n => n.Name == "act").OpType = "Sigmoid";
        string a = Write(before, "a.onnx"), b = Write(after, "b.onnx");

        var json = CliHarness.Run("diff", a, b, "--json", "--nodes").Json().GetProperty("nodes");
        var text = CliHarness.Run("diff", a, b, "--nodes");

        Assert.Equal(9, json.GetProperty("nodes_added").GetArrayLength());
        Assert.Equal("Sigmoid", json.GetProperty("nodes_rewritten")[0].GetProperty("op").GetString());
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("nodes 4 -> 13: 9 added, 0 removed, 1 rewritten", text.Out);
        Assert.Contains("Identity x9: copy_0, copy_1, copy_2, copy_3, copy_4, copy_5 ... and 3 more", text.Out);
        Assert.Contains("Sigmoid x1: act (was Relu; op)", text.Out);
    }

    [Fact]
    public void DiffWithAMissingSecondFileNamesIt()
    {
        string a = Write(ModelDiffTests.SmallModel(), "a.onnx");
        string missing = Path.Combine(_dir, "b.onnx");

        var result = CliHarness.Run("diff", a, missing);

        Assert.Equal(3, result.ExitCode);
        Assert.Contains(missing, result.Error);
    }
}

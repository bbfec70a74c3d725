using System.Text.Json;
using OnnxQuant.Analysis;
using OnnxQuant.Cli;
using OnnxQuant.IO;
using OnnxQuant.Recipes;
using OnnxQuant.Statistics;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Recipes;

/// <summary>
/// `onnxquant run` on the example recipe (models/recipes/tiny-llama-mixed.json): each rewrite touches only the linears
/// the recipe assigns it, the written model carries its provenance, and `inspect`/`diff` show it.
/// </summary>
public sealed class RecipeRunTests
{
    private static string TinyLlama => Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", "model.onnx");

    private static string ExampleRecipe => Path.Combine(CliHarness.RepoRoot(), "models", "recipes", "tiny-llama-mixed.json");

    [Fact]
    public void Mixed_recipe_rewrites_each_linear_with_its_scheme_and_records_provenance()
    {
        using var temp = new TempFolder();
        string output = temp.File("mixed.onnx");
        var run = CliHarness.Run("run", ExampleRecipe, TinyLlama, "-o", output, "--device", "cpu", "--json");
        Assert.True(run.ExitCode == 0, run.Error);

        var recipe = RecipeFile.Read(ExampleRecipe);
        using var input = ModelFile.Load(TinyLlama);
        var names = LinearAnalysis.Analyze(input.Graph, new LinearSelection(includeLmHead: true)).Quantizable.Select(c => c.Name).ToList();
        List<string> Assigned(LinearScheme scheme) => names.Where(n => recipe.Linears.Overrides.Any(o => o.Scheme == scheme && LinearSelection.Matches(o.Match, n))).ToList();
        var w8a8 = Assigned(LinearScheme.W8A8);
        var w4 = Assigned(LinearScheme.W4);
        Assert.NotEmpty(w8a8);
        Assert.NotEmpty(w4);

        using var written = ModelFile.Load(output);
        var nodes = written.Graph.Nodes;
        // Each emitted linear node names the original linear it stands for: W8A8 products only for the W8A8 linears, MatMulNBits only for the W4 ones.
        var int8Linears = nodes.Where(n => n.OpType == "MatMulInteger").SelectMany(n => Provenance.Of(n)!.Linears).Order().ToList();
        var nbitsLinears = nodes.Where(n => n.OpType == "MatMulNBits").SelectMany(n => Provenance.Of(n)!.Linears).Order().ToList();
        Assert.Equal(w8a8.Order(), int8Linears);
        Assert.Equal(w4.Order(), nbitsLinears);
        // Everything else stays a float MatMul under its own name (the last block, the LM head).
        var untouched = names.Except(w8a8).Except(w4).ToList();
        Assert.NotEmpty(untouched);
        Assert.All(untouched, n => Assert.Equal("MatMul", nodes.Single(node => node.Name == n).OpType));
        var json = run.Json();
        Assert.Equal(w8a8.Count, json.GetProperty("linears_w8a8").GetInt32());
        Assert.Equal(w4.Count, json.GetProperty("linears_w4").GetInt32());

        var provenance = ModelProvenance.Read(written.Header).ToDictionary(e => e.Key, e => e.Value);
        Assert.Equal(ToolVersion.Text, provenance[ModelProvenance.VersionKey]);
        Assert.Equal(RecipeWriter.Format(recipe, indented: false), provenance[ModelProvenance.RecipeKey]);
        Assert.Equal(ModelFingerprint.Compute(input.Graph), provenance[ModelProvenance.InputKey]);
        Assert.Matches("^sha256:[0-9a-f]{64}$", provenance[ModelProvenance.CalibrationKey]);
        using var verification = JsonDocument.Parse(provenance[ModelProvenance.VerificationKey]);
        Assert.Equal(json.GetProperty("verification").GetProperty("relative_error").GetDouble(),
            verification.RootElement.GetProperty("relative_error").GetDouble());
        var gate = verification.RootElement.GetProperty("gates")[0];
        Assert.Equal("gates.maxPplIncrease", gate.GetProperty("option").GetString());
        Assert.Equal(json.GetProperty("gates")[0].GetProperty("measured").GetDouble(), gate.GetProperty("measured").GetDouble());

        // inspect shows the entries; diff against the input names the recipe as new.
        var inspect = CliHarness.Run("inspect", output, "--json");
        Assert.Equal(0, inspect.ExitCode);
        var shown = inspect.Json().GetProperty("provenance").EnumerateArray().ToDictionary(e => e.GetProperty("key").GetString()!, e => e.GetProperty("value").GetString()!);
        Assert.Equal(provenance, shown);
        var text = CliHarness.Run("inspect", output);
        Assert.Contains("fold-weights -> w8a8 -> awq -> w4-rewrite; default float", text.Out);
    }

    [Fact]
    public void Diff_compares_the_provenance_of_two_recipes_field_by_field()
    {
        using var temp = new TempFolder();
        string g32 = temp.File("g32.json"), g64 = temp.File("g64.json");
        string rtn = """
            { "recipe": 1, "passes": [ { "pass": "fold-weights" }, { "pass": "w4-rewrite", "blockSize": BLOCK } ],
              "verification": { "enabled": false } }
            """;
        File.WriteAllText(g32, rtn.Replace("BLOCK", "32"));
        File.WriteAllText(g64, rtn.Replace("BLOCK", "64"));
        Assert.Equal(0, CliHarness.Run("run", g32, TinyLlama, "-o", temp.File("a.onnx")).ExitCode);
        Assert.Equal(0, CliHarness.Run("run", g64, TinyLlama, "-o", temp.File("b.onnx")).ExitCode);

        var diff = CliHarness.Run("diff", temp.File("a.onnx"), temp.File("b.onnx"), "--json");
        Assert.True(diff.ExitCode == 0, diff.Error);
        var entries = diff.Json().GetProperty("provenance").EnumerateArray().ToDictionary(e => e.GetProperty("key").GetString()!);
        var recipe = entries[ModelProvenance.RecipeKey];
        Assert.False(recipe.GetProperty("same").GetBoolean());
        Assert.Equal(["passes[1].blockSize"], recipe.GetProperty("differences").EnumerateArray().Select(e => e.GetString()!).ToArray());
        Assert.True(entries[ModelProvenance.InputKey].GetProperty("same").GetBoolean());
        Assert.Equal("none", entries[ModelProvenance.CalibrationKey].GetProperty("before").GetString());

        var printed = CliHarness.Run("diff", temp.File("a.onnx"), temp.File("b.onnx"));
        Assert.Contains("differs: passes[1].blockSize", printed.Out);
    }
}

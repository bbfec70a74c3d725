using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Recipes;

/// <summary>A recipe is validated before any work: each mistake exits 2 with a message naming the key and the file, and writes nothing.</summary>
public sealed class RecipeValidationTests
{
    private static string TinyLlama => Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", "model.onnx");

    private const string Fold = """{ "pass": "fold-weights" }""";

    public static TheoryData<string, string> Mistakes => new()
    {
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8", "fromat": "dynamic" } ] }""", "passes[1].fromat" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8", "format": "int4" } ] }""", "passes[1].format" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite", "blockSize": 48 } ] }""", "passes[1].blockSize" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite", "accuracyLevel": "high" } ] }""", "passes[1].accuracyLevel" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "smoothquant", "alpha": 1.5 } ] }""", "passes[1].alpha" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "gptq" } ] }""", "passes[1].pass" },
        { """{ "recipe": 1, "passes": [ { "pass": "w8a8" } ] }""", "passes[0].pass" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8" }, { "pass": "smoothquant" } ] }""", "passes[2].pass" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "awq" } ] }""", "passes[1].pass" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8" }, { "pass": "w4-rewrite" } ] }""", "linears.default" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8" } ], "linears": { "overrides": [ { "match": "*mlp*", "scheme": "w4" } ] } }""", "linears.overrides[0].scheme" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8" } ], "linears": { "overrides": [ { "match": "/[/", "scheme": "float" } ] } }""", "linears.overrides[0].match" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8" } ], "linears": { "overrides": [ { "pattern": "*", "scheme": "float" } ] } }""", "linears.overrides[0].pattern" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8" } ], "calibration": { "seqLen": "long" } }""", "calibration.seqLen" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8" } ], "verification": { "task": "seq2seq" } }""", "verification.task" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8" } ], "gates": { "minTop1": 120 } }""", "gates.minTop1" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8" } ], "gates": { "minTop1": 50 }, "verification": { "enabled": false } }""", "gates.minTop1" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8" } ], "gate": { "minTop1": 50 } }""", "gate" },
        { $$"""{ "recipe": 2, "passes": [ {{Fold}} ] }""", "recipe" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite", "rounding": "optimal" } ] }""", "passes[1].rounding" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite", "rounding": "gptq", "damp": 0 } ] }""", "passes[1].damp" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite", "rounding": "gptq", "actOrder": "yes" } ] }""", "passes[1].actOrder" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite", "actOrder": false } ] }""", "passes[1].actOrder" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite", "rounding": "rtn", "damp": 0.05 } ] }""", "passes[1].damp" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite", "rounding": "rtn", "damp": "auto" } ] }""", "passes[1].damp" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite", "rounding": "gptq", "damp": "often" } ] }""", "passes[1].damp" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "bits-plan" }, { "pass": "w4-rewrite" } ] }""", "passes[1].bitsBudget" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "bits-plan", "bitsBudget": 5, "maxSizeMb": 3 }, { "pass": "w4-rewrite" } ] }""", "passes[1].maxSizeMb" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "bits-plan", "bitsBudget": 40 }, { "pass": "w4-rewrite" } ] }""", "passes[1].bitsBudget" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "bits-plan", "bitsBudget": 5, "sensitivity": "layer" }, { "pass": "w4-rewrite" } ] }""", "passes[1].sensitivity" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "bits-plan", "bitBudget": 5 }, { "pass": "w4-rewrite" } ] }""", "passes[1].bitBudget" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite" }, { "pass": "bits-plan", "bitsBudget": 5 } ] }""", "passes[2].pass" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "bits-plan", "bitsBudget": 5 }, { "pass": "awq" }, { "pass": "w4-rewrite" } ] }""", "passes[1].pass" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite" } ], "calibration": { "sampleRows": 0 } }""", "calibration.sampleRows" },
        // The embeddings pass and the W8A8 float-outlier threshold.
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "smoothquant" }, { "pass": "w8a8", "format": "dynamic", "floatOutliers": 6 } ] }""", "passes[2].floatOutliers" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "smoothquant" }, { "pass": "w8a8", "floatOutliers": "six" } ] }""", "passes[2].floatOutliers" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "smoothquant" }, { "pass": "w8a8", "floatOutliers": 0 } ] }""", "passes[2].floatOutliers" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8", "floatOutliers": 6 } ] }""", "passes[1].floatOutliers" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite" }, { "pass": "embeddings", "bits": 5 } ] }""", "passes[2].bits" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite" }, { "pass": "embeddings" } ] }""", "passes[2].bits" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite" }, { "pass": "embeddings", "bit": 4 } ] }""", "passes[2].bit" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite" }, { "pass": "embeddings", "bits": 4, "blockSize": 48 } ] }""", "passes[2].blockSize" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "w4-rewrite" }, { "pass": "embeddings", "lmHeadBits": 8 } ] }""", "passes[2].lmHeadBits" },
        { $$"""{ "recipe": 1, "passes": [ {{Fold}}, { "pass": "embeddings", "bits": 8 }, { "pass": "w4-rewrite" } ] }""", "passes[1].pass" },
    };

    [Theory]
    [MemberData(nameof(Mistakes))]
    public void A_mistake_exits_2_naming_its_key_and_the_file(string text, string key)
    {
        using var temp = new TempFolder();
        string recipe = temp.File("bad.json");
        File.WriteAllText(recipe, text);
        var run = CliHarness.Run("run", recipe, TinyLlama, "-o", temp.File("out.onnx"), "--json");
        Assert.Equal(2, run.ExitCode);
        var error = run.Json().GetProperty("error");
        Assert.Equal(recipe, error.GetProperty("file").GetString());
        Assert.Contains(key + " ", error.GetProperty("message").GetString());
        Assert.Equal(["bad.json"], temp.FileNames());
    }

    [Fact]
    public void Overrides_giving_one_linear_two_schemes_are_refused_before_calibration()
    {
        using var temp = new TempFolder();
        string recipe = temp.File("overlap.json");
        File.WriteAllText(recipe, $$"""
            { "recipe": 1, "passes": [ {{Fold}}, { "pass": "w8a8", "format": "dynamic" }, { "pass": "w4-rewrite" } ],
              "linears": { "default": "float", "overrides": [
                { "match": "*self_attn*", "scheme": "w8a8" },
                { "match": "/model/layers.1/*", "scheme": "w4" } ] } }
            """);
        var run = CliHarness.Run("run", recipe, TinyLlama, "-o", temp.File("out.onnx"));
        Assert.Equal(2, run.ExitCode);
        Assert.Contains("linears.overrides[0]", run.Error);
        Assert.Contains("linears.overrides[1]", run.Error);
        Assert.Contains("/model/layers.1/self_attn/q_proj/MatMul", run.Error);
        Assert.DoesNotContain("calibrating", run.Error);
        Assert.Equal(["overlap.json"], temp.FileNames());
    }
}

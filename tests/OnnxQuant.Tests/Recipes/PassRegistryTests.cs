using OnnxQuant.Passes;
using OnnxQuant.Recipes;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Recipes;

/// <summary>Issue 27: every pass is declared once, in the registry the recipe reader, writer and pipeline dispatch through.</summary>
public sealed class PassRegistryTests
{
    [Fact]
    public void Every_pass_spec_type_is_declared_exactly_once()
    {
        var specTypes = typeof(PassSpec).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(PassSpec)) && !t.IsAbstract).ToHashSet();
        var declared = PassRegistry.All.Select(d => d.SpecType).ToList();

        Assert.Equal(declared.Count, declared.Distinct().Count());
        Assert.Equal(specTypes.OrderBy(t => t.Name), declared.OrderBy(t => t.Name));
        Assert.Equal(PassRegistry.All.Count, PassRegistry.All.Select(d => d.Name).Distinct().Count());
    }

    [Fact]
    public void Every_declared_pass_is_documented_in_the_recipe_reference()
    {
        string doc = File.ReadAllText(Path.Combine(CliHarness.RepoRoot(), "docs", "recipes.md"));
        Assert.All(PassRegistry.All, d => Assert.Contains($"| `{d.Name}` |", doc));
    }

    [Fact]
    public void An_unknown_pass_is_refused_with_the_registry_names()
    {
        var e = Assert.Throws<OnnxQuantException>(() => RecipeFile.Parse("""{"recipe": 1, "passes": [{"pass": "rotate"}]}""", "r.json"));
        Assert.Contains($"must be one of {PassRegistry.Names} (got \"rotate\")", e.Message);
        Assert.Equal(7, PassRegistry.Names.Split(',').Length);
    }

    [Fact]
    public void A_recipe_naming_every_pass_writes_and_reads_back_to_the_same_text()
    {
        const string recipe = """
            { "recipe": 1,
              "passes": [ { "pass": "fold-weights" }, { "pass": "smoothquant", "alpha": 0.6, "insertMul": true },
                          { "pass": "w8a8", "format": "qlinear", "floatOutliers": 6 }, { "pass": "awq", "gridPoints": 7, "blockLoss": true },
                          { "pass": "bits-plan", "maxSizeMb": 3.5 }, { "pass": "w4-rewrite", "blockSize": 64, "rounding": "gptq", "damp": 0.05 },
                          { "pass": "embeddings", "bits": 4, "lmHeadBits": 8, "blockSize": 32 } ],
              "linears": { "default": "w4", "includeLmHead": true, "overrides": [ { "match": "*attn*", "scheme": "w8a8" } ] } }
            """;
        var first = RecipeFile.Parse(recipe, "r.json");
        string written = RecipeWriter.Format(first);
        string again = RecipeWriter.Format(RecipeFile.Parse(written, "r.json"));

        Assert.Equal(written, again);
        Assert.Equal(PassRegistry.All.Select(d => d.Name), first.Passes.Select(p => p.Name));
        Assert.Contains("\"damp\": 0.05", written);
        Assert.Contains("\"maxSizeMb\": 3.5", written);
        Assert.True(first.Pipeline().NeedsCalibration);
        Assert.True(first.RoundsWithGptq);
    }
}

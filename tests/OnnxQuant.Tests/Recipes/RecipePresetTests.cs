using OnnxQuant.IO;
using OnnxQuant.Passes;
using OnnxQuant.Passes.W8A8;
using OnnxQuant.Recipes;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Recipes;

/// <summary>`smooth`/`awq` are presets of a recipe: the recipe `--print-recipe` prints, run by `run`, writes the same bytes.</summary>
public sealed class RecipePresetTests
{
    private static string TinyLlama => Path.Combine(CliHarness.RepoRoot(), "models", "tiny-llama", "model.onnx");

    public static TheoryData<string[]> CommandLines => new()
    {
        new[] { "smooth", "--alpha", "auto", "--exclude", "*down_proj*", "--samples", "8", "--seq-len", "64", "--no-verify" },
        new[] { "smooth", "--format", "dynamic", "--alpha", "0.55", "--include-lm-head", "--samples", "8", "--seq-len", "64", "--no-verify" },
        new[] { "awq", "--group-size", "64", "--grid", "5", "--exclude", "/layers\\.1\\//", "--samples", "8", "--seq-len", "64", "--no-verify" },
        // GPTQ rounding after AWQ's scales, a bits plan, and the 2048 sample rows such a recipe calibrates with.
        new[] { "awq", "--method", "awq-gptq", "--bits-budget", "5", "--damp", "0.05", "--group-size", "64", "--grid", "5", "--samples", "8", "--seq-len", "64", "--no-verify" },
        // The plan ranked by the model's own output (one ONNX Runtime session over the model).
        new[] { "awq", "--method", "rtn", "--bits-budget", "6", "--sensitivity", "model", "--samples", "8", "--seq-len", "64", "--no-verify" },
        // The embeddings pass: a 4-bit GatherBlockQuantized embedding and the head on its own (8-bit MatMulNBits).
        new[] { "awq", "--quantize-embeddings", "4", "--include-lm-head", "--grid", "5", "--samples", "8", "--seq-len", "64", "--no-verify" },
        new[] { "smooth", "--float-outliers", "6", "--samples", "8", "--seq-len", "64", "--no-verify" },
    };

    [Theory]
    [MemberData(nameof(CommandLines))]
    public void Running_the_printed_recipe_writes_the_same_model_bytes(string[] commandLine)
    {
        using var temp = new TempFolder();
        string[] command = [commandLine[0], TinyLlama, .. commandLine[1..]];
        // Same file name in two folders: the external data file's name is part of the model proto.
        Directory.CreateDirectory(temp.File("direct"));
        Directory.CreateDirectory(temp.File("recipe"));
        string direct = Path.Combine(temp.File("direct"), "out.onnx"), viaRecipe = Path.Combine(temp.File("recipe"), "out.onnx");

        var printed = CliHarness.Run([.. command, "--print-recipe"]);
        Assert.True(printed.ExitCode == 0, printed.Error);
        Assert.False(File.Exists(direct));
        string recipePath = temp.File("preset.json");
        File.WriteAllText(recipePath, printed.Out);
        // The printed text is the canonical form: reading it back and writing it again changes nothing.
        Assert.Equal(printed.Out.TrimEnd(), RecipeWriter.Format(RecipeFile.Read(recipePath)));

        var ran = CliHarness.Run([.. command, "-o", direct, "--device", "cpu"]);
        Assert.True(ran.ExitCode == 0, ran.Error);
        var fromRecipe = CliHarness.Run("run", recipePath, TinyLlama, "-o", viaRecipe, "--device", "cpu");
        Assert.True(fromRecipe.ExitCode == 0, fromRecipe.Error);

        Assert.Equal(File.ReadAllBytes(direct), File.ReadAllBytes(viaRecipe));
        Assert.Equal(File.ReadAllBytes(direct + ".data"), File.ReadAllBytes(viaRecipe + ".data"));
        if (commandLine.Contains("--quantize-embeddings"))
        {
            using var written = ModelFile.Load(viaRecipe);
            Assert.Single(written.Graph.Nodes, n => n.OpType == "GatherBlockQuantized");
            Assert.Equal(1 + 14, written.Graph.Nodes.Count(n => n.OpType == "MatMulNBits")); // the head and the 14 linears
        }
    }

    [Fact]
    public void The_printed_recipe_states_the_tables_and_the_outlier_threshold()
    {
        var awq = RecipeFile.Parse(CliHarness.Run("awq", TinyLlama, "--quantize-embeddings", "8", "--include-lm-head", "--lm-head-bits", "4",
            "--group-size", "64", "--symmetric", "--accuracy-level", "4", "--print-recipe").Out, "awq.json");
        Assert.Equal(["fold-weights", "awq", "w4-rewrite", "embeddings"], awq.Passes.Select(p => p.Name).ToArray());
        var tables = Assert.IsType<EmbeddingHeadSpec>(awq.Passes[3]);
        Assert.Equal((8, 4, 64, true, 4), (tables.Options.EmbeddingBits, tables.LmHeadBits, tables.Options.BlockSize, tables.Options.Symmetric, tables.Options.AccuracyLevel));
        Assert.True(awq.Linears.IncludeLmHead);
        // The head is the embeddings pass's: every other pass's selection leaves it out at its own bits.
        Assert.All(awq.Pipeline().Passes, p => Assert.Equal(4, p switch
        {
            FoldWeightsSpec f => f.Selection.LmHeadBits,
            AwqSpec a => a.Options.Selection.LmHeadBits,
            W4RewriteSpec r => r.Options.Selection.LmHeadBits,
            EmbeddingHeadSpec e => e.LmHeadBits,
            _ => null,
        }));

        // Without --include-lm-head the head stays float: no lmHeadBits, and no embeddings pass without --quantize-embeddings.
        var plain = RecipeFile.Parse(CliHarness.Run("awq", TinyLlama, "--lm-head-bits", "4", "--print-recipe").Out, "plain.json");
        Assert.DoesNotContain(plain.Passes, p => p is EmbeddingHeadSpec);

        var smooth = RecipeFile.Parse(CliHarness.Run("smooth", TinyLlama, "--float-outliers", "6.5", "--format", "qlinear", "--quantize-embeddings", "4",
            "--print-recipe").Out, "smooth.json");
        Assert.Equal(6.5f, Assert.IsType<W8A8RewriteSpec>(smooth.Passes[2]).Options.FloatOutlierThreshold);
        Assert.Equal(6.5f, Assert.IsType<SmoothQuantSpec>(smooth.Pipeline().Passes[1]).Options.FakeQuant.OutlierThreshold);
        var smoothTables = Assert.IsType<EmbeddingHeadSpec>(smooth.Passes[3]);
        Assert.Equal((4, (int?)null), (smoothTables.Options.EmbeddingBits, smoothTables.LmHeadBits));
    }

    [Fact]
    public void The_printed_recipe_states_the_command_line()
    {
        var printed = CliHarness.Run("awq", TinyLlama, "--method", "rtn", "--group-size", "32", "--symmetric", "--exclude", "*q_proj*", "--max-ppl-increase", "3",
            "--print-recipe");
        Assert.Equal(0, printed.ExitCode);
        var recipe = RecipeFile.Parse(printed.Out, "printed.json");
        Assert.Equal(["fold-weights", "w4-rewrite"], recipe.Passes.Select(p => p.Name).ToArray());
        var rewrite = Assert.IsType<OnnxQuant.Passes.W4RewriteSpec>(recipe.Passes[1]);
        Assert.Equal(32, rewrite.Options.Quantization.BlockSize);
        Assert.Equal(OnnxQuant.Quantization.Int4Scheme.Symmetric, rewrite.Options.Quantization.Scheme);
        Assert.Equal(LinearScheme.W4, recipe.Linears.Default);
        Assert.Equal([new SchemeOverride("*q_proj*", LinearScheme.Float)], recipe.Linears.Overrides);
        Assert.Equal(3, recipe.Gates.MaxPplIncrease);
    }

    [Fact]
    public void The_printed_recipe_states_gptq_and_the_size_budget()
    {
        var printed = CliHarness.Run("awq", TinyLlama, "--method", "gptq", "--no-act-order", "--damp", "0.05", "--max-size", "1.5", "--print-recipe");
        Assert.True(printed.ExitCode == 0, printed.Error);
        var recipe = RecipeFile.Parse(printed.Out, "printed.json");
        Assert.Equal(["fold-weights", "bits-plan", "w4-rewrite"], recipe.Passes.Select(p => p.Name).ToArray());
        var plan = Assert.IsType<MixedPrecisionSpec>(recipe.Passes[1]);
        Assert.Equal(new SizeBudget.MaxBytes(1_572_864), plan.Options.Budget);
        var rewrite = Assert.IsType<W4RewriteSpec>(recipe.Passes[2]);
        Assert.Equal(WeightRounding.Gptq, rewrite.Options.Rounding);
        Assert.Equal(0.05f, rewrite.Options.Gptq.Dampening);
        Assert.False(rewrite.Options.Gptq.ActOrder);
        Assert.Equal(CalibrationSettings.GptqSampleRows, recipe.SampleRows);
        // The plan measures with the rewrite's own rounding and settings.
        var planned = recipe.Pipeline().Passes.OfType<MixedPrecisionSpec>().Single();
        Assert.Equal(WeightRounding.Gptq, planned.Options.Rewrite.Rounding);
        Assert.False(planned.Options.Rewrite.Gptq.ActOrder);

        // Round-to-nearest without a plan calibrates (when it must) with 512 rows; GPTQ's keys are null there.
        var rtn = CliHarness.Run("awq", TinyLlama, "--method", "rtn", "--print-recipe");
        Assert.Equal(0, rtn.ExitCode);
        Assert.Contains("\"rounding\": \"rtn\"", rtn.Out);
        Assert.Contains("\"damp\": null", rtn.Out);
        Assert.Contains("\"sampleRows\": 512", rtn.Out);
        Assert.Equal(CalibrationSettings.DefaultSampleRows, RecipeFile.Parse(rtn.Out, "rtn.json").SampleRows);
    }

    [Fact]
    public void The_clip_search_is_off_by_default_under_a_bits_budget_and_on_without_one()
    {
        static bool Clip(Recipe recipe) => Assert.Single(recipe.Passes.OfType<AwqSpec>()).Options.Search.Clip;
        static Recipe Printed(params string[] args)
        {
            var run = CliHarness.Run(["awq", TinyLlama, .. args, "--print-recipe"]);
            Assert.True(run.ExitCode == 0, run.Error);
            return RecipeFile.Parse(run.Out, "printed.json");
        }

        Assert.True(Clip(Printed()));
        Assert.False(Clip(Printed("--bits-budget", "5")));
        Assert.False(Clip(Printed("--method", "awq-gptq", "--max-size", "1.5")));
        Assert.True(Clip(Printed("--bits-budget", "5", "--clip")));
        Assert.False(Clip(Printed("--no-clip")));

        // A hand-written recipe: the same default when "clip" is left out, what it says otherwise.
        const string plan = """{ "pass": "bits-plan", "bitsBudget": 5 }""";
        string Recipe(string awq, bool withPlan) =>
            $$"""{ "recipe": 1, "passes": [ { "pass": "fold-weights" }, {{awq}}, {{(withPlan ? plan + "," : "")}} { "pass": "w4-rewrite" } ] }""";
        Assert.False(Clip(RecipeFile.Parse(Recipe("""{ "pass": "awq" }""", withPlan: true), "r.json")));
        Assert.True(Clip(RecipeFile.Parse(Recipe("""{ "pass": "awq", "clip": true }""", withPlan: true), "r.json")));
        Assert.True(Clip(RecipeFile.Parse(Recipe("""{ "pass": "awq" }""", withPlan: false), "r.json")));
    }

    [Fact]
    public void Damp_auto_reaches_the_rewrite_and_round_trips_through_the_printed_recipe()
    {
        var printed = CliHarness.Run("awq", TinyLlama, "--method", "gptq", "--damp", "auto", "--print-recipe");
        Assert.True(printed.ExitCode == 0, printed.Error);
        Assert.Contains("\"damp\": \"auto\"", printed.Out);
        var rewrite = Assert.Single(RecipeFile.Parse(printed.Out, "printed.json").Passes.OfType<W4RewriteSpec>());
        Assert.True(rewrite.Options.Gptq.AutoDampening);

        var fixedDamp = Assert.Single(RecipeFile.Parse(CliHarness.Run("awq", TinyLlama, "--method", "gptq", "--damp", "0.05", "--print-recipe").Out, "p.json")
            .Passes.OfType<W4RewriteSpec>());
        Assert.False(fixedDamp.Options.Gptq.AutoDampening);
        Assert.Equal(0.05f, fixedDamp.Options.Gptq.Dampening);

        var bad = CliHarness.Run("awq", TinyLlama, "--method", "gptq", "--damp", "often", "--print-recipe");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--damp must be auto or a fraction in (0, 1] (got often)", bad.Error);
    }
}

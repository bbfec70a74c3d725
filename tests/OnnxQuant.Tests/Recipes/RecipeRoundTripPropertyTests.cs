using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnnxQuant.Recipes;

namespace OnnxQuant.Tests.Recipes;

/// <summary>
/// Issue 27: for generated recipes naming every registered pass with random valid options, every key given is written
/// back with its value, and the written recipe reads back to the same text.
/// </summary>
public sealed class RecipeRoundTripPropertyTests
{
    public static TheoryData<int> Seeds() => [.. Enumerable.Range(1, 200)];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Every_given_option_is_written_back_and_the_writing_reads_back(int seed)
    {
        var random = new Random(seed);
        var passes = GeneratePasses(random);
        var recipe = new JsonObject
        {
            ["recipe"] = 1,
            ["passes"] = new JsonArray([.. passes.Select(p => (JsonNode)p)]),
            ["linears"] = new JsonObject { ["default"] = "w4", ["includeLmHead"] = true },
        };

        string written = RecipeWriter.Format(RecipeFile.Parse(recipe.ToJsonString(), "r.json"));
        Assert.Equal(written, RecipeWriter.Format(RecipeFile.Parse(written, "r.json")));

        var writtenPasses = JsonNode.Parse(written)!["passes"]!.AsArray();
        Assert.Equal(PassRegistry.All.Select(d => d.Name), writtenPasses.Select(p => (string)p!["pass"]!));
        for (int i = 0; i < passes.Count; i++)
            foreach (var (key, value) in passes[i])
                Assert.True(SameValue(value, writtenPasses[i]![key]), $"seed {seed}: passes[{i}].{key} was {value?.ToJsonString()}, written {writtenPasses[i]![key]?.ToJsonString()}");
    }

    // One entry per registered pass, each key present or not at random, values inside the documented ranges and the
    // documented combinations (docs/recipes.md).
    private static List<JsonObject> GeneratePasses(Random r)
    {
        bool Coin() => r.Next(2) == 0;
        double Number(double low, double high) => Math.Round(low + r.NextDouble() * (high - low), 3);
        var smooth = new JsonObject { ["pass"] = "smoothquant" };
        if (Coin()) smooth["alpha"] = Coin() ? "auto" : Number(0, 1);
        if (Coin()) smooth["alphaGrid"] = new JsonArray(Number(0, 0.5), Number(0.5, 1));
        if (Coin()) smooth["insertMul"] = Coin();
        if (Coin()) smooth["scope"] = Coin() ? "all" : "norm-inputs";

        string format = new[] { "int8", "dynamic", "qlinear", "qdq" }[r.Next(4)];
        var w8a8 = new JsonObject { ["pass"] = "w8a8", ["format"] = format };
        if (Coin()) w8a8["reducedRange"] = Coin();
        if (format != "qdq" && Coin()) w8a8["uint8Activations"] = Coin();
        if (Coin()) w8a8["maxFloatChannels"] = r.Next(0, 65);
        if (Coin()) w8a8["absorbSmoothingMul"] = Coin();
        if (Coin()) w8a8["outputRangeMargin"] = Number(1, 16);
        if (format is "int8" or "qlinear" && Coin()) w8a8["floatOutliers"] = Number(0.5, 20);

        var awq = new JsonObject { ["pass"] = "awq" };
        if (Coin()) awq["gridPoints"] = r.Next(1, 1001);
        if (Coin()) awq["duoScaling"] = Coin();
        if (Coin()) awq["clip"] = Coin();
        if (Coin()) awq["clipSteps"] = r.Next(1, 1001);
        if (Coin()) awq["maxShrink"] = Number(0.01, 0.99);
        if (Coin()) awq["maxRows"] = r.Next(1, 1_000_001);
        if (Coin()) awq["insertMul"] = Coin();
        if (Coin()) awq["blockLoss"] = Coin();

        var plan = new JsonObject { ["pass"] = "bits-plan" };
        if (Coin()) plan["bitsBudget"] = Number(2, 16);
        else plan["maxSizeMb"] = Number(0.5, 100);
        if (Coin()) plan["sensitivity"] = new[] { "linear", "model", "auto" }[r.Next(3)];

        var rewrite = new JsonObject { ["pass"] = "w4-rewrite" };
        if (Coin()) rewrite["blockSize"] = new[] { 32, 64, 128, 256 }[r.Next(4)];
        if (Coin()) rewrite["symmetric"] = Coin();
        if (Coin()) rewrite["accuracyLevel"] = r.Next(0, 5);
        if (Coin())
        {
            rewrite["rounding"] = "gptq";
            if (Coin()) rewrite["damp"] = Coin() ? "auto" : Number(0.001, 1);
            if (Coin()) rewrite["actOrder"] = Coin();
        }

        var tables = new JsonObject { ["pass"] = "embeddings" };
        int? bits = r.Next(3) switch { 0 => null, 1 => 4, _ => 8 };
        int? headBits = bits is null ? (Coin() ? 4 : 8) : r.Next(3) switch { 0 => null, 1 => 4, _ => 8 };
        tables["bits"] = bits;
        tables["lmHeadBits"] = headBits;
        if (Coin()) tables["blockSize"] = new[] { 16, 32, 64, 128, 256 }[r.Next(5)];
        if (Coin()) tables["symmetric"] = Coin();
        if (Coin()) tables["accuracyLevel"] = r.Next(0, 5);

        return [new JsonObject { ["pass"] = "fold-weights" }, smooth, w8a8, awq, plan, rewrite, tables];
    }

    private static bool SameValue(JsonNode? given, JsonNode? written)
    {
        if (given is null || written is null)
            return given is null && written is null;
        if (given.GetValueKind() == JsonValueKind.Number && written.GetValueKind() == JsonValueKind.Number)
        {
            double a = double.Parse(given.ToJsonString(), CultureInfo.InvariantCulture), b = double.Parse(written.ToJsonString(), CultureInfo.InvariantCulture);
            return Math.Abs(a - b) <= 1e-6 * Math.Max(1, Math.Abs(a));
        }
        if (given is JsonArray first && written is JsonArray second)
            return first.Count == second.Count && first.Zip(second).All(p => SameValue(p.First, p.Second));
        return given.ToJsonString() == written.ToJsonString();
    }
}

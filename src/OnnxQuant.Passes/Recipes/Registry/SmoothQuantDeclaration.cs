using System.Text.Json;
using OnnxQuant.Passes;

namespace OnnxQuant.Recipes;

/// <summary>smoothquant: alpha (or its search), the grid, the Mul insertion and the scope.</summary>
public sealed class SmoothQuantDeclaration : PassDeclaration<SmoothQuantSpec>
{
    public override string Name => "smoothquant";

    private protected override SmoothQuantSpec ReadSpec(JsonFields f) => new(ReadSmoothQuant(f));

    protected override void Write(Utf8JsonWriter w, SmoothQuantSpec spec)
    {
        var s = spec.Options;
        if (s.Alpha is { } alpha)
            w.WriteNumber("alpha", Math.Round(alpha, 6));
        else
            w.WriteString("alpha", "auto");
        if (s.AlphaGrid is { } grid)
        {
            w.WriteStartArray("alphaGrid");
            foreach (var a in grid)
                w.WriteNumberValue(Math.Round(a, 6));
            w.WriteEndArray();
        }
        else
        {
            w.WriteNull("alphaGrid");
        }
        w.WriteBoolean("insertMul", s.InsertMul);
        w.WriteString("scope", RecipeFile.Pick(RecipeFile.ScopeNames, RecipeFile.Scopes, s.Scope));
    }

    // The search measures the error of the w8a8 rewrite that follows it, with that rewrite's fake-quantization.
    protected override SmoothQuantSpec Bind(SmoothQuantSpec spec, RecipeBinding binding) =>
        new(spec.Options with { Selection = binding.W8A8, FakeQuant = binding.Rewrite8?.Options.FakeQuant ?? spec.Options.FakeQuant });

    private static SmoothQuantOptions ReadSmoothQuant(JsonFields f)
    {
        float? alpha = f.Get("alpha") switch
        {
            null => null,
            { ValueKind: JsonValueKind.String } s when s.GetString() == "auto" => null,
            _ => (float)f.Number("alpha", 0, 1)!.Value,
        };
        var grid = f.Array("alphaGrid").Select((e, i) => e.ValueKind == JsonValueKind.Number && e.GetDouble() is >= 0 and <= 1
            ? (float)e.GetDouble()
            : throw new RecipeError($"{f.KeyPath("alphaGrid")}[{i}]", $"must be a number between 0 and 1 (got {JsonFields.Describe(e)})")).ToList();
        return new SmoothQuantOptions
        {
            Alpha = alpha,
            AlphaGrid = grid.Count > 0 ? grid : null,
            InsertMul = f.Bool("insertMul", false),
            Scope = f.Choice("scope", RecipeFile.ScopeNames, RecipeFile.Scopes) ?? SmoothingScope.All,
        };
    }
}

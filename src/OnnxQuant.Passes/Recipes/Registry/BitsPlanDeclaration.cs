using System.Text.Json;
using OnnxQuant.Passes;

namespace OnnxQuant.Recipes;

/// <summary>bits-plan: the size budget and how each linear's sensitivity is measured.</summary>
public sealed class BitsPlanDeclaration : PassDeclaration<MixedPrecisionSpec>
{
    public override string Name => "bits-plan";

    private protected override MixedPrecisionSpec ReadSpec(JsonFields f) => ReadBitsPlan(f);

    protected override void Write(Utf8JsonWriter w, MixedPrecisionSpec spec)
    {
        var plan = spec.Options;
        var budget = plan.Budget;
        // Bytes over 2^20 and back is exact, so maxSizeMb reads back to the same byte budget.
        RecipeWriter.WriteNullable(w, "bitsBudget", (budget as SizeBudget.AverageBits)?.Bits);
        RecipeWriter.WriteNullable(w, "maxSizeMb", budget is SizeBudget.MaxBytes m ? m.Bytes / SizeBudget.BytesPerMb : null);
        w.WriteString("sensitivity", RecipeFile.Pick(RecipeFile.SensitivityNames, RecipeFile.Sensitivities, plan.Sensitivity));
    }

    // The plan measures each linear with the rounding, grid and selection of the rewrite that follows it.
    protected override MixedPrecisionSpec Bind(MixedPrecisionSpec spec, RecipeBinding binding) =>
        new(spec.Options with { Rewrite = (binding.Rewrite4?.Options ?? spec.Options.Rewrite) with { Selection = binding.W4 } });

    // The plan's rounding, grid and selection are the w4-rewrite entry's (Recipe.Pipeline).
    private static MixedPrecisionSpec ReadBitsPlan(JsonFields f)
    {
        var sensitivity = f.Choice("sensitivity", RecipeFile.SensitivityNames, RecipeFile.Sensitivities) ?? BitsSensitivity.LinearOutput;
        return new MixedPrecisionSpec(new MixedPrecisionOptions(ReadBudget(f), new W4RewriteOptions()) { Sensitivity = sensitivity });
    }

    // Exactly one of the two sizes.
    private static SizeBudget ReadBudget(JsonFields f)
    {
        double? bits = f.Number("bitsBudget", 0, 32);
        double? megabytes = f.Number("maxSizeMb", 0, 1e9);
        f.Done(); // a misspelt key is reported before the missing one
        if (bits is not null && megabytes is not null)
            throw new RecipeError(f.KeyPath("maxSizeMb"), "and bitsBudget both set the size; give one");
        if (bits is <= 0)
            throw new RecipeError(f.KeyPath("bitsBudget"), "must be an average above 0 and at most 32 bits per weight (got 0)");
        if (megabytes is <= 0)
            throw new RecipeError(f.KeyPath("maxSizeMb"), "must be a positive size in MB (got 0)");
        return bits is { } b ? new SizeBudget.AverageBits(b)
            : megabytes is { } mb ? new SizeBudget.MaxBytes((long)Math.Floor(mb * SizeBudget.BytesPerMb))
            : throw new RecipeError(f.KeyPath("bitsBudget"), "is missing: give bitsBudget (average bits per weight) or maxSizeMb (the emitted model's initializers in MB)");
    }
}

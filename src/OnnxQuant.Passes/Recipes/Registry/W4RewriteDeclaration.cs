using System.Text.Json;
using OnnxQuant.Gptq;
using OnnxQuant.Passes;
using OnnxQuant.Quantization;

namespace OnnxQuant.Recipes;

/// <summary>w4-rewrite: MatMulNBits blocks, symmetry, accuracy level and the rounding (RTN or GPTQ with its settings).</summary>
public sealed class W4RewriteDeclaration : PassDeclaration<W4RewriteSpec>
{
    public override string Name => "w4-rewrite";

    private protected override W4RewriteSpec ReadSpec(JsonFields f) => new(ReadW4(f));

    protected override void Write(Utf8JsonWriter w, W4RewriteSpec spec)
    {
        var r = spec.Options;
        w.WriteNumber("blockSize", r.Quantization.BlockSize);
        w.WriteBoolean("symmetric", r.Quantization.Scheme == Int4Scheme.Symmetric);
        w.WriteNumber("accuracyLevel", r.AccuracyLevel);
        w.WriteString("rounding", RecipeFile.Pick(RecipeFile.RoundingNames, RecipeFile.Roundings, r.Rounding));
        // GPTQ's settings mean nothing to round-to-nearest, and the reader refuses them there.
        bool gptq = r.Rounding == WeightRounding.Gptq;
        if (gptq && r.Gptq.AutoDampening)
            w.WriteString("damp", "auto");
        else
            RecipeWriter.WriteNullable(w, "damp", gptq ? Math.Round(r.Gptq.Dampening, 6) : null);
        if (gptq)
            w.WriteBoolean("actOrder", r.Gptq.ActOrder);
        else
            w.WriteNull("actOrder");
    }

    protected override W4RewriteSpec Bind(W4RewriteSpec spec, RecipeBinding binding) => new(spec.Options with { Selection = binding.W4 });

    private static W4RewriteOptions ReadW4(JsonFields f)
    {
        int block = f.Int("blockSize", 32, 256) ?? new Int4QuantOptions().BlockSize;
        if (!Int4QuantOptions.LinearBlockSizes.Contains(block))
            throw new RecipeError(f.KeyPath("blockSize"), $"must be {Int4QuantOptions.LinearBlockSizeWords} (got {block})");
        var rounding = f.Choice("rounding", RecipeFile.RoundingNames, RecipeFile.Roundings) ?? WeightRounding.Rtn;
        var gptqDefaults = new GptqOptions();
        bool autoDamp = f.Get("damp") is { ValueKind: JsonValueKind.String } s && s.GetString() == "auto";
        double? damp = autoDamp ? null : f.Number("damp", 0, 1);
        if (damp is <= 0)
            throw new RecipeError(f.KeyPath("damp"), "must be above 0 and at most 1 (a fraction of XᵀX's mean diagonal; got 0)");
        bool actOrderGiven = f.Get("actOrder") is not null;
        bool actOrder = f.Bool("actOrder", gptqDefaults.ActOrder);
        var options = new W4RewriteOptions
        {
            Quantization = new Int4QuantOptions { BlockSize = block, Scheme = f.Bool("symmetric", false) ? Int4Scheme.Symmetric : Int4Scheme.Asymmetric },
            AccuracyLevel = f.Int("accuracyLevel", 0, 4) ?? 0,
            Rounding = rounding,
            Gptq = gptqDefaults with
            {
                Dampening = damp is { } d ? (float)d : gptqDefaults.Dampening,
                AutoDampening = autoDamp || (damp is null && gptqDefaults.AutoDampening),
                ActOrder = actOrder,
            },
        };
        f.Done(); // a misspelt key is reported before what its absence implies
        // GPTQ's settings with round-to-nearest would be silently ignored: most likely "rounding" was forgotten.
        if (rounding == WeightRounding.Rtn && (damp is not null || autoDamp || actOrderGiven))
            throw new RecipeError(f.KeyPath(damp is not null || autoDamp ? "damp" : "actOrder"), "is a GPTQ setting: give \"rounding\": \"gptq\" with it, or leave it out");
        return options;
    }
}

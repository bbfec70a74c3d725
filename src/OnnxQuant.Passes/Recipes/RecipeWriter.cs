using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using OnnxQuant.Passes;
using OnnxQuant.Quantization;

namespace OnnxQuant.Recipes;

/// <summary>
/// The canonical text of a recipe: every key, defaults filled in, in the order docs/recipes.md lists them. What
/// `--print-recipe` prints and what the written model's `onnxquant.recipe` entry holds; <see cref="RecipeFile.Parse"/>
/// reads it back to an equal recipe.
/// </summary>
public static class RecipeWriter
{
    public static string Format(Recipe recipe, bool indented = true)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = indented, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteNumber("recipe", Recipe.Version);
            w.WriteStartArray("passes");
            foreach (var pass in recipe.Passes)
                WritePass(w, pass);
            w.WriteEndArray();
            WriteLinears(w, recipe.Linears);
            WriteCalibration(w, recipe.Calibration, recipe.SampleRows);
            WriteVerification(w, recipe.Verification);
            w.WriteStartObject("gates");
            WriteNullable(w, "maxPplIncrease", recipe.Gates.MaxPplIncrease);
            WriteNullable(w, "minCosine", recipe.Gates.MinCosine);
            WriteNullable(w, "minTop1", recipe.Gates.MinTop1);
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WritePass(Utf8JsonWriter w, PassSpec pass)
    {
        w.WriteStartObject();
        w.WriteString("pass", pass.Name);
        switch (pass)
        {
            case SmoothQuantSpec { Options: var s }:
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
                w.WriteString("scope", Pick(RecipeFile.ScopeNames, RecipeFile.Scopes, s.Scope));
                break;
            case W8A8RewriteSpec { Options: var o }:
                w.WriteString("format", Pick(RecipeFile.FormatNames, RecipeFile.Formats, o.Format));
                w.WriteBoolean("reducedRange", o.ReducedRangeWeights);
                w.WriteBoolean("uint8Activations", o.UnsignedActivations);
                w.WriteNumber("maxFloatChannels", o.MaxFloatChannels);
                w.WriteBoolean("absorbSmoothingMul", o.AbsorbSmoothingMul);
                w.WriteNumber("outputRangeMargin", Math.Round(o.OutputRangeMargin, 6));
                WriteNullable(w, "floatOutliers", o.FloatOutlierThreshold is { } t ? Math.Round(t, 6) : null);
                break;
            case AwqSpec { Options: var a }:
                w.WriteNumber("gridPoints", a.Search.GridPoints);
                w.WriteBoolean("duoScaling", a.Search.DuoScaling);
                w.WriteBoolean("clip", a.Search.Clip);
                w.WriteNumber("clipSteps", a.Search.ClipSteps);
                w.WriteNumber("maxShrink", Math.Round(a.Search.MaxShrink, 6));
                w.WriteNumber("maxRows", a.Search.MaxRows);
                w.WriteBoolean("insertMul", a.InsertMul);
                w.WriteBoolean("blockLoss", a.BlockLoss);
                break;
            case MixedPrecisionSpec { Options: { Budget: var budget } plan }:
                // Bytes over 2^20 and back is exact, so maxSizeMb reads back to the same byte budget.
                WriteNullable(w, "bitsBudget", (budget as SizeBudget.AverageBits)?.Bits);
                WriteNullable(w, "maxSizeMb", budget is SizeBudget.MaxBytes m ? m.Bytes / SizeBudget.BytesPerMb : null);
                w.WriteString("sensitivity", Pick(RecipeFile.SensitivityNames, RecipeFile.Sensitivities, plan.Sensitivity));
                break;
            case W4RewriteSpec { Options: var r }:
                w.WriteNumber("blockSize", r.Quantization.BlockSize);
                w.WriteBoolean("symmetric", r.Quantization.Scheme == Int4Scheme.Symmetric);
                w.WriteNumber("accuracyLevel", r.AccuracyLevel);
                w.WriteString("rounding", Pick(RecipeFile.RoundingNames, RecipeFile.Roundings, r.Rounding));
                // GPTQ's settings mean nothing to round-to-nearest, and the reader refuses them there.
                bool gptq = r.Rounding == WeightRounding.Gptq;
                if (gptq && r.Gptq.AutoDampening)
                    w.WriteString("damp", "auto");
                else
                    WriteNullable(w, "damp", gptq ? Math.Round(r.Gptq.Dampening, 6) : null);
                if (gptq)
                    w.WriteBoolean("actOrder", r.Gptq.ActOrder);
                else
                    w.WriteNull("actOrder");
                break;
            case EmbeddingHeadSpec { Options: var e } tables:
                WriteNullable(w, "bits", e.EmbeddingBits);
                WriteNullable(w, "lmHeadBits", tables.LmHeadBits);
                w.WriteNumber("blockSize", e.BlockSize);
                w.WriteBoolean("symmetric", e.Symmetric);
                w.WriteNumber("accuracyLevel", e.AccuracyLevel);
                break;
        }
        w.WriteEndObject();
    }

    private static void WriteLinears(Utf8JsonWriter w, LinearAssignment linears)
    {
        w.WriteStartObject("linears");
        w.WriteString("default", RecipeFile.Name(linears.Default));
        w.WriteBoolean("includeLmHead", linears.IncludeLmHead);
        w.WriteStartArray("overrides");
        foreach (var o in linears.Overrides)
        {
            w.WriteStartObject();
            w.WriteString("match", o.Match);
            w.WriteString("scheme", RecipeFile.Name(o.Scheme));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    private static void WriteCalibration(Utf8JsonWriter w, CalibrationSettings c, int sampleRows)
    {
        w.WriteStartObject("calibration");
        w.WriteStartArray("data");
        foreach (var path in c.Data)
            w.WriteStringValue(Path.GetFullPath(path));
        w.WriteEndArray();
        WritePath(w, "stats", c.Stats);
        WritePath(w, "tokenizer", c.Tokenizer);
        w.WriteNumber("samples", c.Samples);
        WriteNullable(w, "seqLen", c.SeqLen);
        w.WriteNumber("seed", c.Seed);
        w.WriteNumber("sampleRows", sampleRows);
        w.WriteEndObject();
    }

    private static void WriteVerification(Utf8JsonWriter w, VerificationSettings v)
    {
        w.WriteStartObject("verification");
        w.WriteBoolean("enabled", v.Enabled);
        WritePath(w, "data", v.Data);
        WriteNullable(w, "samples", v.Samples);
        WriteNullable(w, "length", v.Length);
        if (v.Task is { } task)
            w.WriteString("task", Pick(RecipeFile.TaskNames, RecipeFile.Tasks, task));
        else
            w.WriteNull("task");
        w.WriteEndObject();
    }

    private static void WritePath(Utf8JsonWriter w, string key, string? path)
    {
        if (path is null)
            w.WriteNull(key);
        else
            w.WriteString(key, Path.GetFullPath(path));
    }

    private static void WriteNullable(Utf8JsonWriter w, string key, double? value)
    {
        if (value is { } v)
            w.WriteNumber(key, v);
        else
            w.WriteNull(key);
    }

    private static string Pick<T>(string[] names, T[] values, T value) where T : struct =>
        names[Array.IndexOf(values, value)];
}

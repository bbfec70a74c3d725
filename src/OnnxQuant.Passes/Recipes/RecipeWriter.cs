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
        PassRegistry.For(pass).WriteOptions(w, pass);
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
            w.WriteString("task", RecipeFile.Pick(RecipeFile.TaskNames, RecipeFile.Tasks, task));
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

    internal static void WriteNullable(Utf8JsonWriter w, string key, double? value)
    {
        if (value is { } v)
            w.WriteNumber(key, v);
        else
            w.WriteNull(key);
    }

}

using System.Text.Json;
using System.Text.Json.Serialization;
using Onnx;
using OnnxQuant.IO;

namespace OnnxQuant.Smoothing;

/// <summary>Which search chose a group's scale.</summary>
public enum SmoothingMethod
{
    SmoothQuant,
    Awq,
}

/// <summary>
/// One smoothing group whose scale a pass applied: where s folded, which linears read the activation, and the search's
/// choice (SmoothQuant's alpha, or AWQ's exponent r). <see cref="FloatChannels"/> counts the input channels SmoothQuant
/// left to the W8A8 graph's float side. <see cref="RescaledLinear"/> names the linear whose output columns took s (a
/// <see cref="FoldKind.LinearColumns"/> fold): its output is divided by s per channel, by design.
/// </summary>
public sealed record SmoothedGroup(string Activation, SmoothingMethod Method, FoldKind Fold, string Target, IReadOnlyList<string> Linears,
    float? Alpha, int FloatChannels, string? RescaledLinear)
{
    public static string? RescaledBy(SmoothingGroup group) => (group.Producer as LinearColumnsFold)?.Source.Name;
}

/// <summary>
/// The smoothing decisions a model carries in its metadata_props: the two models alone do not say which alpha was chosen
/// (docs/architecture.md, "Diff"), so the passes write their applied groups here and `diff` reads them back.
/// A few hundred bytes per group; a later pass appends to what an earlier one wrote.
/// </summary>
public static class SmoothingRecord
{
    public const string Key = "onnxquant.smoothing";

    private static readonly JsonSerializerOptions Json = new() { Converters = { new JsonStringEnumConverter() } };

    /// <summary>Adds <paramref name="groups"/> to the model's record (nothing when empty).</summary>
    public static void Append(OnnxModel model, IReadOnlyCollection<SmoothedGroup> groups)
    {
        if (groups.Count == 0)
            return;
        var all = Read(model.Header).Concat(groups).ToList();
        var props = model.Header.MetadataProps;
        var existing = props.FirstOrDefault(p => p.Key == Key);
        if (existing is null)
            props.Add(new StringStringEntryProto { Key = Key, Value = JsonSerializer.Serialize(all, Json) });
        else
            existing.Value = JsonSerializer.Serialize(all, Json);
    }

    /// <summary>The recorded groups, or none when the model has no (readable) record.</summary>
    public static IReadOnlyList<SmoothedGroup> Read(ModelProto header)
    {
        var entry = header.MetadataProps.FirstOrDefault(p => p.Key == Key);
        if (entry is null)
            return [];
        try
        {
            return JsonSerializer.Deserialize<List<SmoothedGroup>>(entry.Value, Json) ?? [];
        }
        catch (JsonException)
        {
            // A record this version cannot read is ignored rather than failing the diff; the graph still tells the rest.
            return [];
        }
    }
}

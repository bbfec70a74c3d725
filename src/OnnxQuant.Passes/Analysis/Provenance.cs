using System.Text.Json;
using System.Text.Json.Serialization;
using Onnx;

namespace OnnxQuant.Analysis;

/// <summary>What an emitted node does for the linears it replaced.</summary>
public enum ProvenanceRole
{
    /// <summary>Quantizes an activation for the linears that read it (shared by them).</summary>
    ActivationQuantizer,
    /// <summary>Computes one linear's product in its quantized form (and rescales it back).</summary>
    Linear,
    /// <summary>Gathers rows of a quantized token-embedding table (GatherBlockQuantized); Linears names the table.</summary>
    Embedding,
}

/// <summary>
/// Which original linears a node emitted by a rewrite stands for, and under which scheme: written into the node's
/// doc_string as a small JSON object (ONNX 1.12's NodeProto has no metadata field), so `diff` can match every linear of
/// the original model to the nodes that replaced it, whatever names they got.
/// </summary>
public sealed record Provenance(string Scheme, ProvenanceRole Role, IReadOnlyList<string> Linears)
{
    private const string Key = "onnxquant";

    private static readonly JsonSerializerOptions Json = new() { Converters = { new JsonStringEnumConverter() } };

    private sealed record Envelope([property: JsonPropertyName(Key)] Provenance Value);

    public string Format() => JsonSerializer.Serialize(new Envelope(this), Json);

    /// <summary>The provenance a node carries, or null for a node no rewrite emitted.</summary>
    public static Provenance? Of(NodeProto node)
    {
        if (!node.DocString.StartsWith("{\"" + Key + "\"", StringComparison.Ordinal))
            return null;
        try
        {
            return JsonSerializer.Deserialize<Envelope>(node.DocString, Json)?.Value;
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using OnnxQuant.Calibrate.Verification;

namespace OnnxQuant.Cli;

/// <summary>
/// What became of the held-out check after the model was written: its report, or the reason it did not run (the model
/// stays either way). In --json: the report's fields with "ran": true, or {"ran": false, "reason": "..."}.
/// </summary>
[JsonConverter(typeof(VerificationOutcomeJson))]
public sealed record VerificationOutcome(VerificationReport? Report, string? Reason)
{
    public bool Ran => Report is not null;

    public static VerificationOutcome Of(VerificationReport report) => new(report, null);

    public static VerificationOutcome NotRun(string reason) => new(null, reason);
}

/// <summary>Writes <see cref="VerificationOutcome"/> flat, so readers of the report's fields see them where they always were.</summary>
public sealed class VerificationOutcomeJson : JsonConverter<VerificationOutcome>
{
    public override VerificationOutcome Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        throw new NotSupportedException("a verification outcome is only written");

    public override void Write(Utf8JsonWriter writer, VerificationOutcome value, JsonSerializerOptions options)
    {
        var node = new JsonObject { ["ran"] = value.Ran };
        if (value.Report is { } report)
        {
            foreach (var (name, field) in JsonSerializer.SerializeToNode(report, options)!.AsObject().ToList())
                node[name] = field?.DeepClone();
        }
        else
        {
            node["reason"] = value.Reason;
        }
        node.WriteTo(writer, options);
    }
}

using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using OnnxQuant.Recipes;

namespace OnnxQuant.Cli;

/// <summary>
/// The provenance figures a quantizing command computes (docs/recipes.md, "Provenance in the written model"): a digest of
/// what calibration ran on, and the verification figures with the gates' verdicts.
/// </summary>
internal static class CalibrationDigest
{
    /// <summary>
    /// "sha256:..." of the token windows calibration ran on (so the same text, sample count, length and seed give the
    /// same digest), of the array files' bytes for .npz data, or of the statistics file; "none" when nothing was read.
    /// </summary>
    public static string Of(CalibrationInput input, CalibrationSettings settings)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        if (settings.Stats is { } stats)
        {
            hash.AppendData(File.ReadAllBytes(stats));
        }
        else if (input.Dataset is { Feeds: null } dataset)
        {
            hash.AppendData(BitConverter.GetBytes(dataset.SequenceLength));
            foreach (var sample in dataset.Samples)
            {
                hash.AppendData(BitConverter.GetBytes(sample.Length));
                hash.AppendData(MemoryMarshal.AsBytes(sample.AsSpan()));
            }
        }
        else if (input.Dataset is not null)
        {
            foreach (var path in settings.Data)
                hash.AppendData(File.ReadAllBytes(path));
            hash.AppendData(BitConverter.GetBytes(settings.Samples));
            hash.AppendData(BitConverter.GetBytes(settings.Seed));
        }
        else
        {
            return "none";
        }
        return "sha256:" + Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    /// <summary>The verification entry: the outcome as --json writes it, with the gates' verdicts.</summary>
    public static string VerificationJson(VerificationOutcome outcome, IReadOnlyList<GateResult> gates)
    {
        var node = JsonSerializer.SerializeToNode(outcome, JsonOutput.Options)!.AsObject();
        node.Remove("elapsed");
        node["gates"] = JsonSerializer.SerializeToNode(gates, JsonOutput.Options);
        return node.ToJsonString();
    }
}

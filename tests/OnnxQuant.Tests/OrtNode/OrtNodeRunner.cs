using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.OrtNode;

/// <summary>Runs a model in onnxruntime-node through tools/ort-node/run.js and reads its outputs back.</summary>
internal static class OrtNodeRunner
{
    public static string Folder => RequiredArtifact.OrtNodeFolder;

    /// <summary>Runs the model; fails the test with the install hint when node or onnxruntime-node is missing.</summary>
    public static Dictionary<string, OrtResult> Run(string modelPath, IReadOnlyDictionary<string, OrtFeed> feeds)
    {
        RequiredArtifact.Require(Artifact.OrtNode);
        string node = RequiredArtifact.FindNode()!;
        string feedsPath = Path.ChangeExtension(modelPath, ".feeds.json");
        File.WriteAllText(feedsPath, FeedsJson(feeds));
        var start = new ProcessStartInfo(node)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(Folder, "run.js"));
        start.ArgumentList.Add(modelPath);
        start.ArgumentList.Add(feedsPath);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"onnxruntime-node failed on {modelPath} (exit {process.ExitCode}): {stderr.Result}");
        var results = new Dictionary<string, OrtResult>(StringComparer.Ordinal);
        foreach (var output in JsonDocument.Parse(stdout).RootElement.EnumerateObject())
        {
            var dims = output.Value.GetProperty("dims").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            var data = output.Value.GetProperty("data").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
            results[output.Name] = new OrtResult(output.Name, data, dims);
        }
        return results;
    }

    private static string FeedsJson(IReadOnlyDictionary<string, OrtFeed> feeds)
    {
        var json = new StringBuilder("{");
        foreach (var (name, feed) in feeds)
        {
            if (json.Length > 1) json.Append(',');
            string type = feed.Int64s is not null ? "int64" : "float32";
            var values = feed.Int64s is not null
                ? feed.Int64s.Select(v => v.ToString(CultureInfo.InvariantCulture))
                : feed.Floats!.Select(v => v.ToString("R", CultureInfo.InvariantCulture));
            json.Append(JsonSerializer.Serialize(name)).Append(":{\"type\":\"").Append(type).Append("\",\"dims\":[")
                .Append(string.Join(",", feed.Shape)).Append("],\"data\":[").Append(string.Join(",", values)).Append("]}");
        }
        return json.Append('}').ToString();
    }
}

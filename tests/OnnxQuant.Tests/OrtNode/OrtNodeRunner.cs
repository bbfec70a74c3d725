using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using OnnxQuant.Tests.Cli;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.OrtNode;

/// <summary>
/// A fact that needs npm onnxruntime-node (tools/ort-node). Skipped with the reason when `node` or
/// tools/ort-node/node_modules is missing, except under CI (CI=true), where scripts/test.sh has run `npm ci` and a missing
/// runtime fails the test.
/// </summary>
public sealed class OrtNodeTheoryAttribute : TheoryAttribute
{
    public OrtNodeTheoryAttribute()
    {
        if (OrtNodeRunner.MissingReason() is { } reason && Environment.GetEnvironmentVariable("CI") != "true")
            Skip = reason;
    }
}

/// <summary>Runs a model in onnxruntime-node through tools/ort-node/run.js and reads its outputs back.</summary>
internal static class OrtNodeRunner
{
    public static string Folder => Path.Combine(CliHarness.RepoRoot(), "tools", "ort-node");

    /// <summary>Why onnxruntime-node cannot run here, or null when it can.</summary>
    public static string? MissingReason()
    {
        if (FindNode() is null)
            return "`node` is not on PATH: install Node.js 18+ to check emitted models in onnxruntime-node";
        if (!Directory.Exists(Path.Combine(Folder, "node_modules", "onnxruntime-node")))
            return $"{Path.Combine(Folder, "node_modules")} is absent: run `npm ci` in tools/ort-node (scripts/test.sh does)";
        return null;
    }

    public static Dictionary<string, OrtResult> Run(string modelPath, IReadOnlyDictionary<string, OrtFeed> feeds)
    {
        string node = FindNode() ?? throw new InvalidOperationException(MissingReason());
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

    private static string? FindNode()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, "node");
            if (File.Exists(candidate))
                return candidate;
        }
        return null;
    }
}

using System.Diagnostics;
using System.Text.Json;
using OnnxQuant.Tests.Support;

namespace OnnxQuant.Tests.GenAi;

/// <summary>Runs tools/genai-run (ONNX Runtime GenAI 0.18 in its own process) and reads its JSON report.</summary>
public static class GenAiRunner
{
    public static JsonElement Run(string reference, IEnumerable<string> compare, string prompts, int tokens = 32)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { RequiredArtifact.GenAiRunDll, "--reference", reference, "--prompts", prompts, "--tokens", tokens.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            info.ArgumentList.Add(arg);
        foreach (var folder in compare)
        {
            info.ArgumentList.Add("--compare");
            info.ArgumentList.Add(folder);
        }
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("genai-run did not finish in 5 minutes");
        }
        Assert.True(process.ExitCode == 0, $"genai-run exited {process.ExitCode}: {stderr.Result}");
        return JsonDocument.Parse(stdout).RootElement.Clone();
    }
}

using System.Diagnostics;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Support;

/// <summary>Something a test needs that is fetched or installed rather than committed.</summary>
public enum Artifact
{
    /// <summary>models/minilm/model.onnx and vocab.txt, fetched from NuGet.</summary>
    MiniLm,
    /// <summary>Debian's python3-onnx (onnx.checker) under /usr/bin/python3.</summary>
    OnnxChecker,
    /// <summary>Node.js and npm onnxruntime-node in tools/ort-node/node_modules.</summary>
    OrtNode,
    /// <summary>Debian's chromium on PATH (renders the diff page headless).</summary>
    Chromium,
    /// <summary>tools/genai-run built (an ONNX Runtime GenAI 0.18 consumer, NuGet Microsoft.ML.OnnxRuntimeGenAI).</summary>
    GenAiRun,
    /// <summary>models/austen-genai (the Austen LM as a GenAI folder), generated from models/austen-lm by a script, not committed.</summary>
    GenAiModel,
    /// <summary>Debian's afl++ (afl-fuzz on PATH) and the sharpfuzz tool of dotnet-tools.json, restored.</summary>
    Afl,
}

/// <summary>
/// The one test policy for artifacts (README, "On a fresh machine"): a test that needs a missing artifact fails with the
/// command that installs it. Only when <see cref="AllowMissingVariable"/> names the artifact (or "all") is the test
/// reported as skipped instead, with the same hint; it never passes without running. Tests mark themselves with
/// <see cref="ArtifactFactAttribute"/> / <see cref="ArtifactTheoryAttribute"/> (which decide the skip) and reach the
/// artifact through <see cref="Require"/> or the path properties here (which fail when it is missing).
/// </summary>
public static class RequiredArtifact
{
    /// <summary>Comma-separated artifact keys (minilm, onnx, node, chromium, genai, genai-model) or "all" whose absence skips instead of failing.</summary>
    public const string AllowMissingVariable = "ONNXQUANT_ALLOW_MISSING";

    public static string MiniLmFolder => Path.Combine(CliHarness.RepoRoot(), "models", "minilm");

    /// <summary>models/minilm/model.onnx; fails the test with the fetch command when it is missing.</summary>
    public static string MiniLmModel => Require(Artifact.MiniLm, Path.Combine(MiniLmFolder, "model.onnx"));

    /// <summary>models/minilm/vocab.txt; fails the test with the fetch command when it is missing.</summary>
    public static string MiniLmVocab => Require(Artifact.MiniLm, Path.Combine(MiniLmFolder, "vocab.txt"));

    public static string OrtNodeFolder => Path.Combine(CliHarness.RepoRoot(), "tools", "ort-node");

    /// <summary>The built GenAI consumer (tools/genai-run); fails the test with the build command when it is missing.</summary>
    public static string GenAiRunDll => Require(Artifact.GenAiRun, GenAiRunPath);

    public static string GenAiModelFolder => Path.Combine(CliHarness.RepoRoot(), "models", "austen-genai");

    /// <summary>models/austen-genai; fails the test with the command that generates it when it is missing.</summary>
    public static string GenAiModel => Require(Artifact.GenAiModel, GenAiModelFolder);

    private static string GenAiRunPath => Path.Combine(CliHarness.RepoRoot(), "tools", "genai-run", "bin", "Release", "net10.0", "GenAiRun.dll");

    private static readonly Lazy<bool> PythonOnnx = new(ImportsOnnx);

    /// <summary>The key <see cref="AllowMissingVariable"/> lists the artifact under.</summary>
    public static string Key(Artifact artifact) => artifact switch
    {
        Artifact.MiniLm => "minilm",
        Artifact.OnnxChecker => "onnx",
        Artifact.OrtNode => "node",
        Artifact.Chromium => "chromium",
        Artifact.GenAiRun => "genai",
        Artifact.GenAiModel => "genai-model",
        Artifact.Afl => "afl",
        _ => throw new ArgumentOutOfRangeException(nameof(artifact)),
    };

    /// <summary>The exact command that fetches or installs the artifact (what scripts/test.sh runs).</summary>
    public static string InstallHint(Artifact artifact) => artifact switch
    {
        Artifact.MiniLm => "bash models/fetch-minilm.sh",
        Artifact.OnnxChecker => "apt-get install python3-onnx",
        Artifact.OrtNode => "apt-get install nodejs npm && (cd tools/ort-node && npm ci)",
        Artifact.Chromium => "apt-get install chromium",
        Artifact.GenAiRun => "dotnet build tools/genai-run -c Release",
        Artifact.GenAiModel => "/usr/bin/python3 models/austen-lm/export_genai.py",
        Artifact.Afl => "apt-get install afl++ && dotnet tool restore",
        _ => throw new ArgumentOutOfRangeException(nameof(artifact)),
    };

    /// <summary>What is missing, or null when the artifact is there.</summary>
    public static string? MissingReason(Artifact artifact)
    {
        switch (artifact)
        {
            case Artifact.MiniLm:
                var missing = new[] { "model.onnx", "vocab.txt" }.Where(f => !File.Exists(Path.Combine(MiniLmFolder, f))).ToList();
                return missing.Count == 0 ? null : $"{string.Join(" and ", missing.Select(f => "models/minilm/" + f))} missing";
            case Artifact.OnnxChecker:
                return PythonOnnx.Value ? null : "/usr/bin/python3 cannot import onnx (Debian python3-onnx)";
            case Artifact.OrtNode:
                if (FindNode() is null)
                    return "`node` is not on PATH";
                return Directory.Exists(Path.Combine(OrtNodeFolder, "node_modules", "onnxruntime-node"))
                    ? null : "tools/ort-node/node_modules/onnxruntime-node is absent";
            case Artifact.Chromium:
                return FindOnPath("chromium") is null ? "`chromium` is not on PATH" : null;
            case Artifact.GenAiRun:
                return File.Exists(GenAiRunPath) ? null : "tools/genai-run/bin/Release/net10.0/GenAiRun.dll is absent";
            case Artifact.GenAiModel:
                var absent = new[] { "model.onnx", "genai_config.json", "tokenizer.json" }.Where(f => !File.Exists(Path.Combine(GenAiModelFolder, f))).ToList();
                return absent.Count == 0 ? null : $"{string.Join(" and ", absent.Select(f => "models/austen-genai/" + f))} missing";
            case Artifact.Afl:
                if (FindOnPath("afl-fuzz") is null)
                    return "`afl-fuzz` is not on PATH (Debian afl++)";
                return SharpFuzzRestored() ? null : "the sharpfuzz tool (dotnet-tools.json) is not restored";
            default:
                throw new ArgumentOutOfRangeException(nameof(artifact));
        }
    }

    // `dotnet tool restore` puts the manifest's tools in the NuGet package folder.
    private static bool SharpFuzzRestored()
    {
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        return Directory.Exists(Path.Combine(packages, "sharpfuzz.commandline", "2.3.0"));
    }

    /// <summary>True when <see cref="AllowMissingVariable"/> lists the artifact's key or "all".</summary>
    public static bool MayBeMissing(Artifact artifact, string? variable = null)
    {
        variable ??= Environment.GetEnvironmentVariable(AllowMissingVariable) ?? "";
        var keys = variable.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return keys.Any(k => k.Equals("all", StringComparison.OrdinalIgnoreCase) || k.Equals(Key(artifact), StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>The message of a missing artifact: what is missing and the command that installs it.</summary>
    public static string Message(Artifact artifact, string reason) =>
        $"{reason}: install it with `{InstallHint(artifact)}` (scripts/test.sh does), or set {AllowMissingVariable}={Key(artifact)} to skip the tests that need it";

    /// <summary>The skip reason of a test needing <paramref name="needs"/>: null unless one is missing and allowed to be.</summary>
    public static string? SkipReason(IEnumerable<Artifact> needs)
    {
        foreach (var artifact in needs)
            if (MissingReason(artifact) is { } reason && MayBeMissing(artifact))
                return $"{AllowMissingVariable} lists '{Key(artifact)}' and {reason}; `{InstallHint(artifact)}` installs it";
        return null;
    }

    /// <summary>Fails the running test with the install hint when the artifact is missing.</summary>
    public static void Require(Artifact artifact)
    {
        if (MissingReason(artifact) is { } reason)
            Assert.Fail(Message(artifact, reason));
    }

    /// <summary><see cref="Require"/>, then <paramref name="path"/>.</summary>
    public static string Require(Artifact artifact, string path)
    {
        Require(artifact);
        return path;
    }

    /// <summary>The `node` executable on PATH, or null.</summary>
    public static string? FindNode() => FindOnPath("node");

    /// <summary>The `chromium` executable on PATH; fails the test with the install hint when it is missing.</summary>
    public static string Chromium => Require(Artifact.Chromium, FindOnPath("chromium") ?? "chromium");

    /// <summary>An executable on PATH, or null.</summary>
    public static string? FindOnPath(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
                return candidate;
        }
        return null;
    }

    // Debian's python3 on purpose: python3-onnx installs there, whatever python3 comes first on PATH.
    private static bool ImportsOnnx()
    {
        const string python = "/usr/bin/python3";
        if (!File.Exists(python))
            return false;
        var info = new ProcessStartInfo(python, "-c \"import onnx\"") { RedirectStandardError = true, RedirectStandardOutput = true };
        using var process = Process.Start(info)!;
        process.StandardOutput.ReadToEnd();
        process.StandardError.ReadToEnd();
        process.WaitForExit();
        return process.ExitCode == 0;
    }
}

/// <summary>A fact that needs artifacts: skipped only when one is missing and <c>ONNXQUANT_ALLOW_MISSING</c> names it.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ArtifactFactAttribute : FactAttribute
{
    public ArtifactFactAttribute(params Artifact[] needs)
    {
        Needs = needs;
        Skip = RequiredArtifact.SkipReason(needs);
    }

    public IReadOnlyList<Artifact> Needs { get; }
}

/// <summary>A theory that needs artifacts: skipped only when one is missing and <c>ONNXQUANT_ALLOW_MISSING</c> names it.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class ArtifactTheoryAttribute : TheoryAttribute
{
    public ArtifactTheoryAttribute(params Artifact[] needs)
    {
        Needs = needs;
        Skip = RequiredArtifact.SkipReason(needs);
    }

    public IReadOnlyList<Artifact> Needs { get; }
}

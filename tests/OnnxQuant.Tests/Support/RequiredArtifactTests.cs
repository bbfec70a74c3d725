using System.Reflection;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Support;

/// <summary>The artifact policy (README, "On a fresh machine"): one opt-out variable, failures that name the install command, no other skips.</summary>
public class RequiredArtifactTests
{
    [Fact]
    public void TheOptOutVariableNamesArtifactsByKeyOrAll()
    {
        Assert.True(RequiredArtifact.MayBeMissing(Artifact.MiniLm, "minilm, node"));
        Assert.True(RequiredArtifact.MayBeMissing(Artifact.OrtNode, "minilm, node"));
        Assert.False(RequiredArtifact.MayBeMissing(Artifact.OnnxChecker, "minilm, node"));
        Assert.All(Enum.GetValues<Artifact>(), a => Assert.True(RequiredArtifact.MayBeMissing(a, "ALL")));
        Assert.All(Enum.GetValues<Artifact>(), a => Assert.False(RequiredArtifact.MayBeMissing(a, "")));
        Assert.Equal(["minilm", "onnx", "node", "chromium", "genai", "genai-model", "afl"], Enum.GetValues<Artifact>().Select(RequiredArtifact.Key));
    }

    [Fact]
    public void AMissingArtifactsMessageCarriesTheExactInstallCommand()
    {
        string message = RequiredArtifact.Message(Artifact.MiniLm, "models/minilm/model.onnx missing");
        Assert.Equal("models/minilm/model.onnx missing: install it with `bash models/fetch-minilm.sh` (scripts/test.sh does), "
            + "or set ONNXQUANT_ALLOW_MISSING=minilm to skip the tests that need it", message);
        Assert.Contains("apt-get install python3-onnx", RequiredArtifact.Message(Artifact.OnnxChecker, "x"));
        Assert.Contains("(cd tools/ort-node && npm ci)", RequiredArtifact.Message(Artifact.OrtNode, "x"));
    }

    [Fact]
    public void NoTestSkipsExceptThroughTheArtifactAttributes()
    {
        var tests = typeof(RequiredArtifactTests).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .SelectMany(m => m.GetCustomAttributes<FactAttribute>().Select(a => (Method: $"{m.DeclaringType!.Name}.{m.Name}", Attribute: a)))
            .ToList();
        Assert.True(tests.Count > 200, $"only {tests.Count} tests found");
        var foreign = tests.Where(t => t.Attribute.GetType().Assembly == typeof(RequiredArtifactTests).Assembly
            && t.Attribute is not (ArtifactFactAttribute or ArtifactTheoryAttribute)).Select(t => t.Method).ToList();
        Assert.True(foreign.Count == 0, $"test attributes of their own: {string.Join(", ", foreign)}");
        var skipped = tests.Where(t => t.Attribute.Skip is not null && t.Attribute is not (ArtifactFactAttribute or ArtifactTheoryAttribute))
            .Select(t => t.Method).ToList();
        Assert.True(skipped.Count == 0, $"skipped outside the artifact policy: {string.Join(", ", skipped)}");
        Assert.True(tests.Count(t => t.Attribute is ArtifactFactAttribute or ArtifactTheoryAttribute) >= 7);
    }

    [Fact]
    public void NoTestDependsOnTheCiVariable()
    {
        string ci = "GetEnvironmentVariable(\"" + "CI" + "\")";
        string root = Path.Combine(CliHarness.RepoRoot(), "tests");
        var offenders = Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && File.ReadAllText(f).Contains(ci, StringComparison.Ordinal))
            .Select(f => Path.GetRelativePath(root, f)).ToList();
        Assert.True(offenders.Count == 0, $"tests that behave differently under CI: {string.Join(", ", offenders)}");
    }
}

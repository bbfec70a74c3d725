using System.Text.RegularExpressions;
using OnnxQuant.Passes;
using OnnxQuant.Tests.Cli;

namespace OnnxQuant.Tests.Architecture;

/// <summary>
/// Issue 27: code outside the registry asks a pass spec what it needs (its virtual members) instead of testing its
/// type, so a new pass is one spec, one declaration and one registration. Only the specs' own file and the registry's
/// folder may name a spec type in a type test.
/// </summary>
public sealed class PassDispatchTests
{
    private static readonly string[] Allowed = ["src/OnnxQuant.Passes/Passes/PipelineSpec.cs", "src/OnnxQuant.Passes/Recipes/Registry/"];

    [Fact]
    public void No_type_test_on_a_pass_spec_outside_the_registry()
    {
        var specs = typeof(PassSpec).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(PassSpec)) && !t.IsAbstract).Select(t => t.Name).ToList();
        Assert.NotEmpty(specs);
        var typeTest = new Regex($@"\b(is|case|as|OfType<)\s*\(?\s*({string.Join("|", specs)})\b|\b({string.Join("|", specs)})\s+\w+\s*=>");
        string root = CliHarness.RepoRoot();
        var found = Directory.EnumerateFiles(Path.Combine(root, "src"), "*.cs", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/'))
            .Where(f => !f.Contains("/obj/") && !f.Contains("/bin/") && !Allowed.Any(f.StartsWith))
            .SelectMany(f => File.ReadLines(Path.Combine(root, f)).Select((line, i) => (f, i, line)))
            .Where(x => typeTest.IsMatch(x.line))
            .Select(x => $"{x.f}:{x.i + 1}: {x.line.Trim()}")
            .ToList();

        Assert.True(found.Count == 0, "type tests on pass specs outside the registry:\n" + string.Join("\n", found));
    }
}

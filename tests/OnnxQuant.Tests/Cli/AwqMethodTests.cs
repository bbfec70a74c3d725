using OnnxQuant.Cli;

namespace OnnxQuant.Tests.Cli;

/// <summary>Issue 27: --method's words map one to one onto the methods; an unknown word is never taken for AWQ.</summary>
public sealed class AwqMethodTests
{
    [Fact]
    public void Every_word_parses_to_a_method_that_writes_back_the_same_word()
    {
        var methods = AwqMethods.Words.Select(AwqMethods.Parse).ToList();
        Assert.Equal(AwqMethods.Words.Length, methods.Distinct().Count());
        Assert.Equal(AwqMethods.Words, methods.Select(m => m.Word()));
    }

    [Fact]
    public void An_unknown_word_is_a_bug_not_awq()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => AwqMethods.Parse("hqq"));
    }
}

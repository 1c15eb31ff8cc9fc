"""Publishers: WordPress, webhook and none, behind one interface (`base.Publisher`)."""
